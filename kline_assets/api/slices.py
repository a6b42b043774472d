"""The month slices the service keeps in memory (`prices.read.memory`), under a byte budget,
each valid exactly as long as the active parts of its run × month are those it was read from
(`ReadCache.version`, a `PartsVersion`: looked up once per hold of the embedded engine, or at
most every `--cache-ttl-s` on a server) — the live refresh writing the current month leaves
the others in memory.

A page whose months are not all in memory is read from ClickHouse as before (one scope ×
month query, ~10–15 ms) and the missing months are read in the background by one thread,
one month at a time, so the first request of a month never waits for the whole month
(measured: a month of 300 scopes × 8 columns reads in a few hundred milliseconds, and a
request waiting on that would blow the cold-page p95). Past the budget the least recently
used month goes first; a month larger than the whole budget is never kept (its pages are
read from ClickHouse every time, and the month is not read again until its data changes).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor

from kline_assets.api.inline import may_block
from kline_assets.prices.read import Page
from kline_assets.prices.read.memory import (
    MonthSlice,
    SliceRequest,
    page_from_slices,
    read_month,
    slice_request,
)
from kline_assets.resources.clickhouse import ClickHouseResource

log = logging.getLogger(__name__)

SliceKey = tuple[str, int, tuple[str, ...]]  # run, month, stored columns


def _stamp(version: Hashable, run_id: str, month: int) -> Hashable:
    """What a slice of run × month must have been read at to be valid under `version`."""
    parts = getattr(version, "month", None)
    return parts(run_id, month) if parts is not None else version


class MonthSlices:
    """Run × month × column-set slices of features_wide, LRU within `max_bytes`."""

    def __init__(self, clickhouse: ClickHouseResource, version, max_bytes: int) -> None:
        self.clickhouse, self._version, self.max_bytes = clickhouse, version, max_bytes
        self._lock = threading.Lock()
        self._slices: OrderedDict[SliceKey, tuple[Hashable, MonthSlice]] = OrderedDict()
        self._pending: set[SliceKey] = set()
        self._too_large: dict[SliceKey, Hashable] = {}  # never read again under this stamp
        self._bytes = 0
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="month-slices")
        self.served = self.passed = self.loads = 0

    def features_page(self, **kwargs: object) -> Page | None:
        """The page from memory, or None (then read ClickHouse) when its months are not
        all kept yet — those are then read in the background — or memory cannot answer it."""
        if self.max_bytes <= 0:
            return None
        req = slice_request(**kwargs)  # type: ignore[arg-type]
        version = self._version()
        if req is None or version is None:
            return None
        keys = [(req.run_id, m, req.stored) for m in req.months]
        stamps = [_stamp(version, req.run_id, m) for m in req.months]
        with self._lock:
            kept = [self._slices.get(k) for k in keys]
        found = [s[1] if s is not None and s[0] == stamp else None
                 for s, stamp in zip(kept, stamps, strict=True)]
        if any(s is None for s in found):
            may_block()  # the page is read from ClickHouse: count and load from the pool
            with self._lock:
                missing = [(k, stamp) for k, stamp, s in zip(keys, stamps, found, strict=True)
                           if s is None and k not in self._pending
                           and self._too_large.get(k) != stamp]
                self._pending.update(k for k, _ in missing)
                self.passed += 1
            for k, stamp in missing:
                self._loader.submit(self._load, k, stamp)
            return None
        with self._lock:
            for k in keys:
                if k in self._slices:
                    self._slices.move_to_end(k)
        return self._answer(req, found)  # type: ignore[arg-type]

    def _answer(self, req: SliceRequest, slices: list[MonthSlice]) -> Page | None:
        page = page_from_slices(req, slices)
        if page is None:
            self.passed += 1
            return None
        self.served += 1
        return page

    def _load(self, key: SliceKey, stamp: Hashable) -> None:
        run_id, month, columns = key

        def current() -> bool:
            version = self._version()
            return version is not None and _stamp(version, run_id, month) == stamp

        try:
            if not current():
                return
            month_slice = read_month(self.clickhouse, run_id, month, columns)
            if not current():
                return  # a writer got in while it was read
            if month_slice.nbytes > self.max_bytes:
                with self._lock:
                    self._too_large[key] = stamp  # until its data changes
                return
            with self._lock:
                old = self._slices.pop(key, None)
                if old is not None:
                    self._bytes -= old[1].nbytes
                self._slices[key] = (stamp, month_slice)
                self._bytes += month_slice.nbytes
                self.loads += 1
                while self._bytes > self.max_bytes:
                    self._bytes -= self._slices.popitem(last=False)[1][1].nbytes
        except Exception:  # the page path still reads ClickHouse; say why memory did not help
            log.exception("reading month %s of run %s into memory failed", month, run_id)
        finally:
            with self._lock:
                self._pending.discard(key)

    def stats(self) -> dict[str, int]:
        return {"months": len(self._slices), "bytes": self._bytes, "served": self.served,
                "passed": self.passed, "loads": self.loads,
                "pending": len(self._pending)}

    def close(self) -> None:
        self._loader.shutdown(wait=False, cancel_futures=True)
