"""A trading calendar whose package ends earlier than the installed one, for tests of what
happens beyond the package on partitions that exist today (Dagster refuses partition keys of
months that have not begun)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kline_assets.stocks import sessions


def package_ending(monkeypatch: pytest.MonkeyPatch, last: str, closures: Path, text: str
                   ) -> str:
    """Make the package decide days up to `last` only, and the closures file `closures`
    (written with `text`, in use through KLINE_XSHG_CLOSURES) the days after. Returns the
    metadata note every materialization of such a day carries."""
    first = sessions.package_range()[0]
    monkeypatch.setattr(sessions, "package_range", lambda: (first, pd.Timestamp(last)))
    closures.write_text(text, encoding="utf-8")
    monkeypatch.setenv(sessions.CLOSURES_ENV, str(closures))
    return f"provisional (closures file {closures})"
