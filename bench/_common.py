"""Shared bench plumbing: a throwaway PostgreSQL database and an embedded ClickHouse store."""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from kline_assets.lib.settings import DATA_DIR, SQL_DIR
from kline_assets.resources import ClickHouseResource, PostgresResource
from kline_assets.resources.build import store_resources

ADMIN_DSN = os.environ.get("KLINE_BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def bench_postgres(name: str) -> Iterator[PostgresResource]:
    """A fresh database `name` with the source schema, dropped afterwards."""
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    info["dbname"] = name
    pg = store_resources(pg_dsn=psycopg.conninfo.make_conninfo(**info))["postgres"]
    pg.execute_file(SQL_DIR / "postgres" / "source.sql")
    try:
        yield pg
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def bench_clickhouse(database: str) -> Iterator[ClickHouseResource]:
    dsn = os.environ.get("KLINE_CLICKHOUSE_DSN", f"chdb://{DATA_DIR / 'bench' / 'clickhouse'}")
    ch = store_resources(clickhouse_dsn=dsn, clickhouse_database=database)["clickhouse"]
    ch.drop_database()
    ch.ensure_schema()
    try:
        yield ch
    finally:
        ch.drop_database()


@contextmanager
def timed(results: dict[str, float], name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    results[name] = time.perf_counter() - t0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssSampler:
    """Samples this process's resident memory every `interval_s` in a thread, so a run's peak
    can be attributed to its steps (by their start/end times)."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.samples: list[tuple[float, float]] = []  # (epoch seconds, MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE") / 2**20
        with open("/proc/self/statm") as statm:
            while not self._stop.is_set():
                statm.seek(0)
                self.samples.append((time.time(), int(statm.read().split()[1]) * page))
                self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak_between(self, start: float, end: float) -> float:
        inside = [mib for t, mib in self.samples if start <= t <= end]
        return max(inside, default=0.0)


def step_peaks(instance, run_id: str, sampler: RssSampler) -> dict[str, float]:
    """Peak RSS (MiB) of each step of an in-process Dagster run, from its step events."""
    bounds: dict[str, list[float]] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event and entry.step_key and event.event_type_value in ("STEP_START",
                                                                   "STEP_SUCCESS"):
            bounds.setdefault(entry.step_key, []).append(entry.timestamp)
    return {step: sampler.peak_between(min(ts), max(ts)) for step, ts in bounds.items()}


QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""Run config of the benches' in-process Dagster runs: warnings only on the console."""


def price_assets() -> list:
    """The price pipeline's assets in dependency order (source, aligned, aggregate, features,
    cohorts): what the benches materialize."""
    from kline_assets.prices.assets import (
        cohorts,
        cross_shop_agg,
        features_wide,
        price_aligned,
        raw_price_records,
    )

    return [raw_price_records, price_aligned, cross_shop_agg, features_wide, cohorts]
