"""The month slices the service keeps in memory (`prices.read.memory`), under a byte budget,
valid exactly as long as the page cache's pages are (`ReadCache.version`: the embedded
engine's hold, or a server's active parts looked up at most every `--cache-ttl-s`).

A page whose months are not all in memory is read from ClickHouse as before (one scope ×
month query, ~10–15 ms) and the missing months are read in the background by one thread,
one month at a time, so the first request of a month never waits for the whole month
(measured: a month of 300 scopes × 8 columns reads in a few hundred milliseconds, and a
request waiting on that would blow the cold-page p95). Past the budget the least recently
used month goes first; a month larger than the whole budget is never kept (its pages are
read from ClickHouse every time).
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

SliceKey = tuple[Hashable, str, int, tuple[str, ...]]


class MonthSlices:
    """Run × month × column-set slices of features_wide, LRU within `max_bytes`."""

    def __init__(self, clickhouse: ClickHouseResource, version, max_bytes: int) -> None:
        self.clickhouse, self._version, self.max_bytes = clickhouse, version, max_bytes
        self._lock = threading.Lock()
        self._slices: OrderedDict[SliceKey, MonthSlice] = OrderedDict()
        self._pending: set[SliceKey] = set()
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
        keys = [(version, req.run_id, m, req.stored) for m in req.months]
        if any(k not in self._slices for k in keys):
            may_block()  # the page is read from ClickHouse: count and load from the pool
        with self._lock:
            found = [self._slices.get(k) for k in keys]
            for k, s in zip(keys, found, strict=True):
                if s is not None:
                    self._slices.move_to_end(k)
            missing = [k for k, s in zip(keys, found, strict=True)
                       if s is None and k not in self._pending]
            self._pending.update(missing)
        for k in missing:
            self._loader.submit(self._load, k)
        if any(s is None for s in found):
            self.passed += 1
            return None
        return self._answer(req, found)  # type: ignore[arg-type]

    def _answer(self, req: SliceRequest, slices: list[MonthSlice]) -> Page | None:
        answer = page_from_slices(req, slices)
        if answer is None:
            self.passed += 1
            return None
        self.served += 1
        return Page(*answer)

    def _load(self, key: SliceKey) -> None:
        version, run_id, month, columns = key
        try:
            if self._version() != version:
                return
            month_slice = read_month(self.clickhouse, run_id, month, columns)
            if self._version() != version or month_slice.nbytes > self.max_bytes:
                return  # a writer got in while it was read, or it can never fit
            with self._lock:
                self._slices[key] = month_slice
                self._bytes += month_slice.nbytes
                self.loads += 1
                for old in [k for k in self._slices if k[0] != version]:
                    self._bytes -= self._slices.pop(old).nbytes
                while self._bytes > self.max_bytes:
                    self._bytes -= self._slices.popitem(last=False)[1].nbytes
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
