"""The service on the session's read store, through Starlette's TestClient (no port)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kline_assets.api.app import create_app


@pytest.fixture(scope="module")
def app(read_store):
    return create_app(read_store.clickhouse, read_store.postgres)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
