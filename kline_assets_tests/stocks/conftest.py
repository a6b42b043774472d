"""Fixtures of the stock tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dagster import DagsterInstance, instance_for_test


@pytest.fixture(scope="module")
def instance() -> Iterator[DagsterInstance]:
    """One Dagster instance per module (overrides the root conftest's per-test one): creating
    one costs ~2 s of SQLite migrations, and each test only reads the results of its own runs."""
    with instance_for_test() as inst:
        yield inst
