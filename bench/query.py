"""Benchmark: the read API (kline_assets.prices.read, `kline serve`) on a features_wide of
≥ 10M rows.

    python bench/query.py [--scopes 300] [--months 12] [--iterations 200] [--naive-iterations 10]
                          [--seconds 15] [--concurrency 8]

Data, generated inside ClickHouse with `numbers()` (seconds, no Python rows): `--scopes` iPhone
scopes × every 15-minute bucket of `--months` months (300 × 12 months = 10.5M rows) of run
`live`, plus a second version (newer inserted_at) of 1 % of the rows, so FINAL has work to do;
a price_aligned of 20 shops × 50 iPhones × one month (2.9M rows); shop/iPhone names in a
throwaway PostgreSQL database.

Latency, p50/p95 over `--iterations` requests with a random scope and month each, in this
process (ClickHouse held open, as the service holds it); a first pass (`page_cold`, the page
and its count in one query of the columns /api/overall-bars/ reads, as the HTTP service asks)
touches each scope × month for the first time, a second (`page_cold_wide`, all 30 columns) as
many other picks, the others then run on the first pass's picks:
* `page`: query_features, 100 rows of one scope and a month range (the issue's target:
  p95 ≤ 100 ms), and `count` of the same filter;
* `long`: the unpivoted long format, 5 names × one day; `aligned`: a price_aligned page.
Baseline, in the same run, the naive way through pandas (`--naive-iterations`):
* `naive_sql`: `SELECT * … WHERE run_id AND scope AND bucket range ORDER BY bucket DESC
  LIMIT 100` without FINAL into a DataFrame — fast-ish but wrong when a row has two versions
  (the count of such pages is printed);
* `naive_pandas`: the run's rows of the month range into a DataFrame, then scope filter,
  newest version per key, sort and head(100) in pandas.

Throughput: `kline serve`'s app on uvicorn in a subprocess (one worker, loopback) under a
bounded load (`--seconds` each, `--concurrency` keep-alive connections) from wrk when it is
installed (`apt-get install wrk`: a C generator that leaves the 2 cores to the service), else
from httpx threads here. Requests: /api/overall-bars/ with one iPhone, one month, limit 100, in
two mixes — `dashboard` (the latest month of 20 iPhones, asked again and again, as a
frontend's users do) and `scattered` (a random iPhone × month of 300 × 12, mostly distinct
pages). Settings: the default (pages cached, months in memory), every request reading
ClickHouse (`cache_pages=0, cache_mib=0`), the page cache alone (the design before the months
in memory), reopened per request (`hold_s=0`), and the baseline the frontend knew: the same
page from a PostgreSQL table by one plain SQL query through psycopg (`bench/pg_baseline.py`),
same stack, same requests. Before each load the months the warm-up asked for are let into
memory. A cold page — the first read of a scope × month — is timed twice: over HTTP, 200
never-asked pages one at a time on the default service once the warm-up's months are in its
memory (what a new user's first look costs), and `page_cold` in process, from ClickHouse (a
page whose month is not in memory yet). Prints the issue's targets against the measured
figures, with the server's CPU per request.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import pg_baseline
from bench._common import bench_clickhouse, bench_postgres
from bench._load import cpu_seconds, load_httpx, load_wrk, pct
from kline_assets.api import DEFAULT_CACHE_MIB, DEFAULT_CACHE_PAGES
from kline_assets.api.prices import OVERALL_COLUMNS
from kline_assets.kernels.feature_names import FEATURE_COLUMNS
from kline_assets.prices import read as query
from kline_assets.prices.read.memory import read_month, slice_columns

START = "2025-01-01 00:00:00"  # Asia/Tokyo
SHOPS, IPHONES = 20, 50


def generate(ch, scopes: int, months: int) -> dict[str, int]:
    """features_wide and price_aligned filled by ClickHouse itself."""
    fw, pa = ch.table("features_wide"), ch.table("price_aligned")
    with ch.client() as client:
        start = int(client.query(f"SELECT toUnixTimestamp(toDateTime('{START}', 'Asia/Tokyo'))"
                                 ).result_rows[0][0])
        end = int(client.query(f"SELECT toUnixTimestamp(addMonths(toDateTime('{START}', "
                               f"'Asia/Tokyo'), {months}))").result_rows[0][0])
        buckets = (end - start) // 900
        n = scopes * buckets
        feats = ", ".join(f"m * (1 + {0.001 * (k % 7):.3f}) + {k}" for k in
                          range(len(FEATURE_COLUMNS)))
        body = (
            "SELECT 'live', toDateTime({start} + (number % {b}) * 900, 'Asia/Tokyo') AS bucket, "
            "concat('iphone:', toString(intDiv(number, {b}) + 1)) AS scope, m, m, "
            "10 + (number % 13), toUInt16(number % 20 + 1), 0.01, NULL, " + feats + ", {ins} "
            "FROM (SELECT number, 100000 + 5000 * sin(number / 500) + intDiv(number, {b}) * 10 "
            "AS m FROM numbers({n})) {where}")
        cols = ("run_id, bucket, scope, mean, median, std, shop_count, dispersion, n_models, "
                + ", ".join(FEATURE_COLUMNS) + ", inserted_at")
        t0 = time.perf_counter()
        client.command(f"INSERT INTO {fw} ({cols}) " + body.format(
            start=start, b=buckets, n=n, where="", ins="toDateTime('2025-12-01 00:00:00')"),
            settings={"max_insert_threads": 2})
        client.command(f"INSERT INTO {fw} ({cols}) " + body.format(
            start=start, b=buckets, n=n, where="WHERE number % 100 = 7",
            ins="toDateTime('2025-12-02 00:00:00')"))
        gen_s = time.perf_counter() - t0
        month_buckets = 31 * 96
        client.command(
            f"INSERT INTO {pa} (run_id, bucket, shop_id, iphone_id, price_new, price_a, price_b, "
            "alignment_diff_sec, record_time) SELECT 'live', "
            f"toDateTime({start} + (number % {month_buckets}) * 900, 'Asia/Tokyo'), "
            f"intDiv(number, {month_buckets}) % {SHOPS} + 1, "
            f"intDiv(number, {month_buckets * SHOPS}) + 1, 100000 + number % 9973, NULL, "
            f"90000, number % 900, toDateTime({start} + (number % {month_buckets}) * 900 "
            f"+ number % 900, 'Asia/Tokyo') FROM numbers({month_buckets * SHOPS * IPHONES})")
        rows = int(client.query(f"SELECT count() FROM {fw}").result_rows[0][0])
        final_rows = int(client.query(f"SELECT count() FROM {fw} FINAL").result_rows[0][0])
    return {"stored_rows": rows, "final_rows": final_rows, "buckets": buckets,
            "generate_s": round(gen_s, 1), "start": start}


def month_range(months: int, rng: random.Random) -> tuple[str, str]:
    return month_range_at(rng.randrange(months))


def month_range_at(m: int) -> tuple[str, str]:
    """The bounds of the m-th month from January 2025, as the frontend sends them."""
    y, mo = 2025 + m // 12, m % 12 + 1
    ny, nmo = (y, mo + 1) if mo < 12 else (y + 1, 1)
    return f"{y}-{mo:02d}-01T00:00", f"{ny}-{nmo:02d}-01T00:00"


def timeit(fn, iterations: int) -> tuple[float, float]:
    samples = []
    for i in range(iterations):
        t0 = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - t0)
    return pct(samples)


def latencies(ch, scopes: int, months: int, iterations: int, naive_iterations: int) -> dict:
    rng = random.Random(7)
    out: dict[str, tuple[float, float]] = {}
    picks = [(f"iphone:{rng.randrange(scopes) + 1}", *month_range(months, rng))
             for _ in range(max(2 * iterations, naive_iterations))]
    fw = ch.table("features_wide")
    wrong = 0
    with ch.held():
        query.count_features(ch, scope="iphone:1")  # warm the engine once
        # First touch of each scope × month: marks and granules come from disk.
        out["page_cold"] = timeit(lambda i: query.features_page(
            ch, scope=picks[i][0], bucket_gte=picks[i][1], bucket_lte=picks[i][2], limit=100,
            columns=OVERALL_COLUMNS), iterations)
        wide = picks[iterations:]
        out["page_cold_wide"] = timeit(lambda i: query.features_page(
            ch, scope=wide[i][0], bucket_gte=wide[i][1], bucket_lte=wide[i][2], limit=100),
            iterations)
        out["page"] = timeit(lambda i: query.query_features(
            ch, scope=picks[i][0], bucket_gte=picks[i][1], bucket_lte=picks[i][2], limit=100),
            iterations)
        out["count"] = timeit(lambda i: query.count_features(
            ch, scope=picks[i][0], bucket_gte=picks[i][1], bucket_lte=picks[i][2]), iterations)
        out["long"] = timeit(lambda i: query.query_feature_values(
            ch, scope=picks[i][0], bucket_gte=picks[i][1], bucket_lte=picks[i][1][:10] + "T23:59",
            names=["mean", "ema_120", "boll_low_120", "boll_mid_120", "boll_up_120"],
            limit=500), iterations)
        out["aligned"] = timeit(lambda i: query.query_price_aligned(
            ch, iphone_ids=[i % IPHONES + 1], shop_ids=[i % SHOPS + 1], limit=100), iterations)

        def naive_sql(i: int) -> None:
            nonlocal wrong
            scope, gte, lte = picks[i]
            with ch.client() as client:
                df = client.query_df(
                    f"SELECT * FROM {fw} WHERE run_id = 'live' AND scope = '{scope}' AND "
                    f"bucket >= toDateTime('{gte.replace('T', ' ')}:00', 'Asia/Tokyo') AND "
                    f"bucket <= toDateTime('{lte.replace('T', ' ')}:00', 'Asia/Tokyo') "
                    "ORDER BY bucket DESC LIMIT 100")
            wrong += int(df["bucket"].duplicated().any())

        def naive_pandas(i: int) -> None:
            scope, gte, lte = picks[i]
            with ch.client() as client:
                df = client.query_df(
                    f"SELECT * FROM {fw} WHERE run_id = 'live' AND "
                    f"bucket >= toDateTime('{gte.replace('T', ' ')}:00', 'Asia/Tokyo') AND "
                    f"bucket <= toDateTime('{lte.replace('T', ' ')}:00', 'Asia/Tokyo')")
            df = df[df["scope"] == scope].sort_values("inserted_at")
            df = df.drop_duplicates(["scope", "bucket"], keep="last")
            df.sort_values("bucket", ascending=False).head(100)

        overall = slice_columns(["bucket", "scope", "mean", "median", "std", "shop_count",
                                 "dispersion", "inserted_at"])
        firsts = [202501 + m for m in range(min(months, 3))]  # January to March 2025
        out["month_read"] = timeit(lambda i: read_month(ch, "live", firsts[i], overall),
                                   len(firsts))
        out["naive_sql"] = timeit(naive_sql, naive_iterations)
        out["naive_pandas"] = timeit(naive_pandas, naive_iterations)
    out["naive_sql_pages_with_duplicates"] = (wrong, naive_iterations)  # type: ignore[assignment]
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(env: dict[str, str], hold_s: float, cache_pages: int, cache_mib: int,
          baseline: bool = False) -> tuple[subprocess.Popen, str]:
    port = free_port()
    code = ("import uvicorn; from kline_assets.api.app import create_app; "
            f"uvicorn.run(create_app(hold_s={hold_s}, cache_pages={cache_pages}, "
            f"cache_mib={cache_mib}), host='127.0.0.1', port={port}, log_level='warning', "
            "access_log=False)")
    cmd = ([sys.executable, str(Path(pg_baseline.__file__)), env["KLINE_PG_DSN"], str(port)]
           if baseline else [sys.executable, "-c", code])
    proc = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("the service did not come up")


def overall_bars_paths(kind: str, scopes: int, months: int, n: int = 2000) -> list[str]:
    """The requests of a mix: `scattered` — a random iPhone × month each (300 × 12 pages,
    mostly distinct); `dashboard` — the latest month of 20 iPhones, asked again and again as
    a frontend's users do."""
    rng = random.Random(11)
    out = []
    for _ in range(n):
        if kind == "dashboard":
            iphone, (gte, lte) = rng.randrange(20) + 1, month_range_at(months - 1)
        else:
            iphone, (gte, lte) = rng.randrange(scopes) + 1, month_range(months, rng)
        out.append(f"/api/overall-bars/?iphone={iphone}&bucket__gte={gte}&bucket__lte={lte}"
                   "&limit=100")
    return out


def cold_pages(url: str, asked: list[str], scopes: int, months: int, n: int = 200
               ) -> tuple[float, float]:
    """p50/p95 (ms) of the first request of `n` iPhone × month pages the service was never
    asked, one at a time (no queueing behind other requests), as a new user's first look."""
    rng = random.Random(5)
    seen = set(asked)
    samples = []
    with httpx.Client(base_url=url, timeout=60) as client:
        while len(samples) < n:
            gte, lte = month_range(months, rng)
            path = (f"/api/overall-bars/?iphone={rng.randrange(scopes) + 1}&bucket__gte={gte}"
                    f"&bucket__lte={lte}&limit=100")
            if path in seen:
                continue
            seen.add(path)
            t0 = time.perf_counter()
            res = client.get(path)
            samples.append(time.perf_counter() - t0)
            assert res.status_code == 200 and len(res.json()["results"]) == 100, res.text
    return pct(samples)


def _memory_settled(url: str, limit_s: float = 120.0) -> None:
    """Until the months the warm-up asked for are in memory (or the budget is full)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        memory = httpx.get(url + "/healthz", timeout=30).json().get("memory")
        if not memory or not memory["pending"]:
            return
        time.sleep(0.5)


# (label, mix, hold_s, cache_pages, cache_mib, PostgreSQL baseline, share of --seconds)
CASES = [
    ("dashboard, pages cached + months in memory", "dashboard", 2.0, DEFAULT_CACHE_PAGES,
     DEFAULT_CACHE_MIB, False, 1.0),
    ("dashboard, every request reads ClickHouse", "dashboard", 2.0, 0, 0, False, 1.0),
    ("scattered, months in memory", "scattered", 2.0, DEFAULT_CACHE_PAGES, DEFAULT_CACHE_MIB,
     False, 1.0),
    ("scattered, pages cached, no months (before)", "scattered", 2.0, DEFAULT_CACHE_PAGES, 0,
     False, 1.0),
    ("scattered, engine reopened per request", "scattered", 0.0, DEFAULT_CACHE_PAGES, 0,
     False, 1 / 3),
    ("scattered, PostgreSQL baseline (psycopg)", "scattered", 0.0, 0, 0, True, 1.0),
]


COLD_CASE = "scattered, months in memory"
"""The service whose first requests of never-asked pages are timed (`cold_pages`)."""


def throughput(env: dict[str, str], args: argparse.Namespace) -> list[tuple[str, dict]]:
    """/api/overall-bars/ over HTTP, per mix and service setting, and the baseline."""
    use_wrk = shutil.which("wrk") is not None
    out = []
    for label, mix, hold_s, cache_pages, cache_mib, baseline, share in CASES:
        seconds = args.seconds * share
        paths = overall_bars_paths(mix, args.scopes, args.months)
        proc, url = serve(env, hold_s, cache_pages, cache_mib, baseline)
        try:
            for p in paths[:40]:  # warm-up: the engine, the names, the first pages
                httpx.get(url + p, timeout=60)
            _memory_settled(url)
            cold = (cold_pages(url, paths[:40], args.scopes, args.months)
                    if label == COLD_CASE else None)
            server0, client0 = cpu_seconds(proc.pid), cpu_seconds()
            if use_wrk:
                r = load_wrk(url, paths, seconds, args.concurrency)
            else:
                r = load_httpx(url, paths, int(seconds * (150 if hold_s or baseline else 3)),
                               args.concurrency)
            r["server_cpu_ms"] = (cpu_seconds(proc.pid) - server0) / r["requests"] * 1000
            r["client_cpu_ms"] = (cpu_seconds() - client0) / r["requests"] * 1000
            health = httpx.get(url + "/healthz", timeout=30).json()
            r["cache"], r["memory"] = health["cache"], health.get("memory")
            r["cold"] = cold
        finally:
            proc.terminate()
            proc.wait(30)
        out.append((label, r))
        print(f"  … {label}: {r['rps']:.1f} req/s, p95 {r['p95']:.1f} ms", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scopes", type=int, default=300)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--naive-iterations", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=15.0,
                    help="length of each HTTP load (the reopened case gets a third)")
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()

    # Its own database: another checkout running this bench must not drop it under us.
    with bench_postgres(f"kline_bench_query_{os.getpid()}") as pg, \
            bench_clickhouse("bench_query") as ch:
        with pg.connect() as conn:
            conn.execute("INSERT INTO shop SELECT g, 'shop ' || g FROM generate_series(1, %s) g",
                         (SHOPS,))
            conn.execute("INSERT INTO iphone SELECT g, 'iPhone ' || g "
                         "FROM generate_series(1, %s) g", (max(IPHONES, args.scopes),))
        info = generate(ch, args.scopes, args.months)
        t0 = time.perf_counter()
        with pg.connect() as conn:
            pg_rows = pg_baseline.fill(conn, args.scopes, info["start"], info["buckets"])
        print(f"PostgreSQL baseline table: {pg_rows:,} rows, {time.perf_counter() - t0:.0f} s")
        print(f"features_wide: {info['stored_rows']:,} stored rows ({info['final_rows']:,} after "
              f"FINAL), {args.scopes} scopes × {info['buckets']:,} buckets, generated in "
              f"{info['generate_s']} s; price_aligned {SHOPS * IPHONES * 31 * 96:,} rows")
        res = latencies(ch, args.scopes, args.months, args.iterations, args.naive_iterations)
        print(f"\nlatency in process (ms), {args.iterations} requests each "
              f"({args.naive_iterations} for the naive ways):")
        print(f"  {'request':<44} {'p50':>8} {'p95':>8}")
        labels = {
            "page_cold": "page + count, first touch of scope × month",
            "page_cold_wide": "the same, all 30 columns (other picks)",
            "page": "features page (1 scope, 1 month, 100 rows)",
            "month_read": "a month of 300 scopes into memory (once)",
            "count": "count of the same filter",
            "long": "long format (5 names × 1 day)",
            "aligned": "price_aligned page (1 shop × 1 iPhone)",
            "naive_sql": "naive: SELECT … LIMIT 100 (no FINAL), pandas",
            "naive_pandas": "naive: month into pandas, dedupe, sort",
        }
        for key, label in labels.items():
            p50, p95 = res[key]
            print(f"  {label:<44} {p50:>8.1f} {p95:>8.1f}")
        wrong, tried = res["naive_sql_pages_with_duplicates"]
        print(f"  naive SQL pages showing a row twice (no FINAL): {wrong}/{tried}")
        page95 = res["page"][1]
        print(f"\n  ratio naive_sql p95 / page p95:    {res['naive_sql'][1] / page95:6.2f}×")
        print(f"  ratio naive_pandas p95 / page p95: {res['naive_pandas'][1] / page95:6.2f}×")
        print(f"  target p95 ≤ 100 ms for a 100-row page: "
              f"{'met' if page95 <= 100 else 'NOT met'} ({page95:.1f} ms)")

        env = {**os.environ, "KLINE_CLICKHOUSE_DSN": ch.dsn, "KLINE_CLICKHOUSE_DATABASE": ch.db,
               "KLINE_PG_DSN": pg.dsn, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        rates = throughput(env, args)
        generator = ("wrk, 1 thread" if shutil.which("wrk") else
                     "httpx threads (install wrk for a lighter generator)")
        print(f"\n/api/overall-bars/ over HTTP (uvicorn, 1 worker, loopback; {generator}, "
              f"{args.concurrency} connections; {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.1f}):")
        for label, r in rates:
            r.setdefault("cache", {"hits": 0, "misses": 0})
            hit = r["cache"]["hits"] / max(1, r["cache"]["hits"] + r["cache"]["misses"])
            print(f"  {label:<42} {r['rps']:7.1f} req/s  p50 {r['p50']:6.1f} ms  p95 "
                  f"{r['p95']:6.1f} ms  errors {r['errors']}  cache hits {hit:4.0%}  CPU a "
                  f"request: server {r['server_cpu_ms']:.2f} ms, generator "
                  f"{r['client_cpu_ms']:.1f} ms")
        by = dict(rates)
        dash = by["dashboard, pages cached + months in memory"]
        scat = by["scattered, months in memory"]
        before = by["scattered, pages cached, no months (before)"]
        pg_r = by["scattered, PostgreSQL baseline (psycopg)"]
        cold95, http_cold = res["page_cold"][1], scat["cold"]
        print(f"  cold page over HTTP (first request of 200 never-asked iPhone × month pages, "
              f"one at a time, their months read by the service): p50 {http_cold[0]:.1f} ms, "
              f"p95 {http_cold[1]:.1f} ms")
        print(f"  ratio scattered in memory / before: {scat['rps'] / before['rps']:.2f}×; "
              f"/ PostgreSQL baseline: {scat['rps'] / pg_r['rps']:.2f}×; a page read from "
              f"ClickHouse costs the server "
              f"~{by['dashboard, every request reads ClickHouse']['server_cpu_ms']:.0f} ms of CPU")
        print("\ntargets (issue 22) against this run:")
        for name, ok, got in [
            ("scattered ≥ 200 req/s", scat["rps"] >= 200, f"{scat['rps']:.0f} req/s"),
            ("scattered p95 ≤ 50 ms", scat["p95"] <= 50, f"{scat['p95']:.1f} ms"),
            ("dashboard ≥ 500 req/s", dash["rps"] >= 500, f"{dash['rps']:.0f} req/s"),
            ("cold page ≤ 30 ms p95, HTTP", http_cold[1] <= 30,
             f"{http_cold[1]:.1f} ms (first request of a scope × month)"),
            ("cold page ≤ 30 ms p95, ClickHouse", cold95 <= 30,
             f"{cold95:.1f} ms (its month not in memory; in process)"),
            ("≥ 3× PostgreSQL on scattered", scat["rps"] >= 3 * pg_r["rps"],
             f"{scat['rps'] / pg_r['rps']:.2f}×"),
        ]:
            print(f"  {name:<32} {'met' if ok else 'NOT met':<8} {got}")
        print(f"  CPU a request (server): scattered {scat['server_cpu_ms']:.2f} ms, dashboard "
              f"{dash['server_cpu_ms']:.2f} ms, PostgreSQL baseline {pg_r['server_cpu_ms']:.2f} ms"
              f"; memory {scat['memory']}")

if __name__ == "__main__":
    main()
