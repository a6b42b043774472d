"""What committed vendor batches tell Dagster: an observation of `stock_1min` per month touched.

The bars arrive outside any Dagster run, so the ingest reports them as runless observations
(`DagsterInstance.report_runless_asset_event`) on the month partitions of `stock_1min`, with
the bars inserted, duplicates, corrections and rejections since the last report. The asset page
then shows that new history arrived, and `vendor_history_sensor` (stocks/vendor/dagster.py)
refreshes `stock_monthly_kline` for exactly those months.

Reports are gathered and sent every few seconds (and when the consumer stops), not per batch:
an observation costs a write to the instance's event log, and a whole-market day is hundreds
of batches. They are sent after the batches committed, so a consumer killed between a commit
and its next report leaves those months unreported until the next batch touching them (or the
16:30 `stock_current_month` schedule) — the bars themselves are never lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dagster import AssetObservation, DagsterInstance, MetadataValue

from .store import Written

ASSET = "stock_1min"
SOURCE = "vendor_stream"
"""The `source` metadata of the observations, which the sensor selects on."""


class MonthEvents:
    """Per-month counters since the last report, flushed as observations every `every` s."""

    def __init__(self, instance: DagsterInstance | Callable[[], DagsterInstance] | None,
                 stream: str, group: str, every: float = 5.0) -> None:
        self._instance = instance
        self.stream, self.group, self.every = stream, group, every
        self._months: dict[str, dict[str, int]] = {}
        self._rejected: dict[str, int] = {}
        self._last = time.monotonic()
        self.reported = 0

    def add(self, written: Written) -> None:
        for month, counts in written.by_month.items():
            into = self._months.setdefault(month, {"inserted": 0, "duplicates": 0,
                                                   "corrections": 0})
            for k, v in counts.items():
                into[k] += v
        for reason, n in written.rejected.items():
            self._rejected[reason] = self._rejected.get(reason, 0) + n

    def maybe_flush(self) -> int:
        if time.monotonic() - self._last < self.every:
            return 0
        return self.flush()

    def flush(self) -> int:
        """Report the gathered months; returns the observations sent."""
        self._last = time.monotonic()
        if self._instance is None or not self._months:
            self._rejected.clear()
            return 0
        if callable(self._instance):  # opened once, at the first report
            self._instance = self._instance()
        instance = self._instance
        rejected = sum(self._rejected.values())
        sent = 0
        for month, counts in sorted(self._months.items()):
            # sent months leave one by one, so a failure half way re-sends only the rest
            instance.report_runless_asset_event(AssetObservation(
                asset_key=ASSET, partition=f"{month}-01",
                description=f"vendor bars from {self.stream} (group {self.group})",
                metadata={"source": SOURCE, "stream": self.stream, "group": self.group,
                          "rows": counts["inserted"] + counts["corrections"],
                          "bars_inserted": counts["inserted"],
                          "corrections": counts["corrections"],
                          "duplicates": counts["duplicates"],
                          "rejected_entries": rejected,
                          "rejected_by_reason": MetadataValue.json(
                              dict(sorted(self._rejected.items())))}))
            sent += 1
            del self._months[month]
        self._rejected.clear()
        self.reported += sent
        return sent
