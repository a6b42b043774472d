"""The HTTP load generators of the read benches: wrk when installed (C, one event-loop
thread: it leaves the 2 cores to the service), else httpx threads; and the CPU a process
used, to report CPU per request."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx


def pct(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) a process has used so far, all its threads; without a pid,
    this process and its finished children (wrk)."""
    if pid is None:
        own, kids = (resource.getrusage(who) for who in
                     (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


WRK_SCRIPT = """
paths = {%s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def load_wrk(url: str, paths: list[str], seconds: float, concurrency: int) -> dict:
    """wrk (C, one event-loop thread) for `seconds`: the generator takes little of the 2
    cores the service needs; latency percentiles from wrk's own histogram."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as f:
        f.write(WRK_SCRIPT % ", ".join(f'"{p}"' for p in paths))
        f.flush()
        cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:.0f}s", "--timeout", "60s",
               "-s", f.name, url]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    n, duration_us, p50, p95, errors = map(int, line.split()[1:])
    return {"requests": n, "rps": n / (duration_us / 1e6), "p50": p50 / 1000,
            "p95": p95 / 1000, "errors": errors}


def load_httpx(url: str, paths: list[str], requests: int, concurrency: int) -> dict:
    """Without wrk: `requests` GETs from `concurrency` threads with keep-alive httpx clients
    (the generator then costs the service ~3 ms of CPU a request)."""
    counter = iter(range(requests))
    lock = threading.Lock()
    samples: list[float] = []
    errors: list[int] = []

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while True:
                with lock:
                    k = next(counter, None)
                if k is None:
                    return
                t0 = time.perf_counter()
                res = client.get(paths[k % len(paths)])
                dt = time.perf_counter() - t0
                with lock:
                    samples.append(dt)
                    if res.status_code != 200 or len(res.json()["results"]) != 100:
                        errors.append(res.status_code)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    p50, p95 = pct(samples)
    return {"requests": len(samples), "rps": len(samples) / wall, "p50": p50, "p95": p95,
            "errors": len(errors)}


