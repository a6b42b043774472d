"""Benchmark: kline_assets.kernels.compute_features (21 columns) vs a pandas/NumPy baseline.

    python bench/features.py [--series 2000] [--buckets 35040] [--device cpu|cuda]
                             [--batch N] [--threads N] [--check]

Both sides do the same work on the same data in the same process: SMA, population sd
(Bollinger mid/up/low/width), EMA (adjust=False) and WMA for windows 8/60/120 buckets on
random-walk price series (~100,000 yen) with a NaN prefix and forward-filled gaps.

Baseline, per window w, on a DataFrame with one column per series: ``rolling(w).mean()``,
``rolling(w).std(ddof=0)``, ``ewm(span=w, adjust=False).mean()``, up/low/width by frame
arithmetic, and the WMA as ``sliding_window_view(x, w) @ weights`` over 16-series chunks
(pandas has no WMA; ``rolling().apply`` is orders of magnitude slower, and prefix-sum
formulas are not accurate to 1e-6 yen at this price level). DataFrame construction is
outside the timed region (it favours pandas).

Memory: 21 outputs of 2000 × 35040 float64 are ~11 GiB per implementation, so by default
the series are processed in batches sized to the available RAM — the same batches for both
sides; the output says so. Outputs of a batch are dropped before the next one.

--check compares a sample of series: sma/ema/wma against pandas, and the Bollinger columns
against an exact per-window two-pass std (numpy), within 1e-6 yen. It also prints how far
pandas' own rolling std is from that exact value: pandas 3 removed its constant-window
shortcut and drifts by up to ~1e-3 yen on long flat stretches.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from numpy.lib.stride_tricks import sliding_window_view

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kline_assets.kernels.features import (
    FEATURE_COLUMNS,
    WINDOWS_MINUTES_TO_BUCKETS,
    compute_features,
)

WMA_CHUNK = 16


def make_batch(seed: int, n: int, t: int) -> np.ndarray:
    """(n, t) random walks at ~100,000 yen, integer yen, NaN prefix, ffilled gaps."""
    rng = np.random.default_rng(seed)
    x = np.round(100_000.0 + np.cumsum(rng.normal(0.0, 150.0, (n, t)), axis=1))
    prefix = rng.integers(0, max(1, t // 20), n)
    x[np.arange(t)[None, :] < prefix[:, None]] = np.nan
    gaps = (rng.random((n, t)) < 0.3) & (np.arange(t)[None, :] > prefix[:, None])
    x[gaps] = np.nan
    # forward fill (vectorised, like pandas ffill)
    idx = np.where(np.isnan(x), 0, np.arange(t)[None, :])
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = x[np.arange(n)[:, None], idx]
    filled[np.arange(t)[None, :] < prefix[:, None]] = np.nan
    return filled


def pandas_features(df: pd.DataFrame, x: np.ndarray) -> dict[str, object]:
    """The same 21 columns with pandas/numpy; df has one column per series (x is df.T)."""
    out: dict[str, object] = {}
    for minutes, w in WINDOWS_MINUTES_TO_BUCKETS.items():
        roll = df.rolling(w)
        sma = roll.mean()
        sd = roll.std(ddof=0)
        up = sma + 2 * sd
        low = sma - 2 * sd
        out[f"ema_{minutes}"] = df.ewm(span=w, adjust=False).mean()
        out[f"sma_{minutes}"] = out[f"boll_mid_{minutes}"] = sma
        out[f"boll_up_{minutes}"], out[f"boll_low_{minutes}"] = up, low
        out[f"boll_width_{minutes}"] = up - low
        weights = np.arange(1, w + 1, dtype=np.float64)
        weights /= weights.sum()
        wma = np.full(x.shape, np.nan)
        if x.shape[1] >= w:
            for r0 in range(0, x.shape[0], WMA_CHUNK):
                rows = x[r0 : r0 + WMA_CHUNK]
                wma[r0 : r0 + WMA_CHUNK, w - 1 :] = sliding_window_view(rows, w, axis=1) @ weights
        out[f"wma_{minutes}"] = wma
    return out


def exact_sd(x: np.ndarray, w: int) -> np.ndarray:
    sd = np.full(x.shape, np.nan)
    if x.shape[1] >= w:
        sd[:, w - 1 :] = sliding_window_view(x, w, axis=1).std(axis=2)
    return sd


def check(x: np.ndarray, kernel: dict[str, torch.Tensor], base: dict[str, object]) -> None:
    rows = np.linspace(0, x.shape[0] - 1, min(8, x.shape[0])).astype(int)
    xs = x[rows]
    worst, pandas_sd_drift = 0.0, 0.0
    for name in FEATURE_COLUMNS:
        got = kernel[name][torch.from_numpy(rows).to(kernel[name].device)].cpu().numpy()
        ref = base[name]
        ref = ref.to_numpy().T[rows] if isinstance(ref, pd.DataFrame) else ref[rows]
        if name.startswith(("boll_up", "boll_low", "boll_width")):
            minutes = int(name.rsplit("_", 1)[1])
            w = WINDOWS_MINUTES_TO_BUCKETS[minutes]
            mid = base[f"sma_{minutes}"].to_numpy().T[rows]
            sd = exact_sd(xs, w)
            exact = {"up": mid + 2 * sd, "low": mid - 2 * sd, "width": 4 * sd}
            kind = name.split("_")[1]
            pandas_sd_drift = max(pandas_sd_drift, float(np.nanmax(np.abs(ref - exact[kind]))))
            ref = exact[kind]
        assert np.array_equal(np.isnan(got), np.isnan(ref)), f"NaN positions differ: {name}"
        err = float(np.nanmax(np.abs(got - ref))) if np.isfinite(ref).any() else 0.0
        assert err <= 1e-6, f"{name}: max abs diff {err:.3g} yen > 1e-6"
        worst = max(worst, err)
    print(
        f"check: {len(rows)} series × {len(FEATURE_COLUMNS)} columns, max |kernel − ref| = "
        f"{worst:.3g} yen (≤ 1e-6); pandas rolling std vs exact: {pandas_sd_drift:.3g} yen"
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakRss:
    """Peak resident set size while the block runs, sampled from /proc/self/statm."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._page = resource.getpagesize()

    def _rss(self) -> int:
        try:
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * self._page
        except OSError:  # not Linux: fall back to the process maximum
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _loop(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakRss:
        self.peak = self._rss()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        self._stop.clear()


def auto_batch(n: int, t: int) -> int:
    """Series per batch so that inputs + one side's outputs use ≤ ~40% of available RAM."""
    try:
        with open("/proc/meminfo") as fh:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh}
        avail = info.get("MemAvailable", 8 * 2**30)
    except OSError:
        avail = 8 * 2**30
    per_series = t * 8 * (21 + 12)  # one side's outputs and intermediates, plus inputs
    return max(1, min(n, int(0.4 * avail // per_series)))


def prefault(nbytes: int) -> None:
    """Touch fresh memory once before timing.

    On a VM the first write to a guest page can cost far more than the page fault itself
    (the host backs it then); whichever side ran first would pay that. Pre-touching the
    size of one batch's outputs evens the field; the batches also alternate which side
    goes first.
    """
    buf = np.ones(nbytes // 8)
    del buf


class Clock:
    """Wall seconds plus the process's user and system CPU seconds."""

    def __init__(self) -> None:
        self.wall = self.user = self.sys = 0.0

    def __enter__(self) -> Clock:
        self._t, self._cpu = time.perf_counter(), os.times()
        return self

    def __exit__(self, *exc: object) -> None:
        cpu = os.times()
        self.wall += time.perf_counter() - self._t
        self.user += cpu.user - self._cpu.user
        self.sys += cpu.system - self._cpu.system

    def __str__(self) -> str:
        return f"{self.wall:8.3f} s   (CPU user {self.user:.1f} s, system {self.sys:.1f} s)"


def time_kernel(x: np.ndarray, device: torch.device, clock: Clock) -> dict:
    xt = torch.from_numpy(x).to(device)
    sync(device)
    with clock:
        out = compute_features(xt)
        sync(device)
    return out


def time_pandas(x: np.ndarray, clock: Clock) -> dict:
    df = pd.DataFrame(x.T)  # construction not timed
    with clock:
        return pandas_features(df, x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--buckets", type=int, default=35_040)
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    ap.add_argument("--batch", type=int, default=0, help="series per batch (0 = auto from RAM)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--check", action="store_true", help="assert agreement on sampled series")
    args = ap.parse_args()

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    n, t = args.series, args.buckets
    batch = args.batch or auto_batch(n, t)
    batches = [(b0, min(n, b0 + batch)) for b0 in range(0, n, batch)]
    full_gib = 18 * n * t * 8 / 2**30
    print(
        f"{n} series × {t} buckets, windows {WINDOWS_MINUTES_TO_BUCKETS} (minutes → buckets), "
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"pandas {pd.__version__}"
    )
    if len(batches) > 1:
        print(
            f"processed in {len(batches)} batches of ≤ {batch} series, same batches for kernel "
            f"and pandas (all outputs at once: {full_gib:.1f} GiB per side); batches alternate "
            f"which side runs first"
        )

    data = [make_batch(i, b1 - b0, t) for i, (b0, b1) in enumerate(batches)]
    compute_features(torch.from_numpy(data[0][:2]).to(device))  # warm-up (CUDA init, caches)
    pandas_features(pd.DataFrame(data[0][:2].T), data[0][:2])
    sync(device)
    prefault(2 * 21 * batch * t * 8)

    kernel_clock, pandas_clock = Clock(), Clock()
    rss_kernel, rss_pandas = PeakRss(), PeakRss()
    peak_kernel = peak_pandas = 0
    cuda_peak = 0
    for i, x in enumerate(data):
        keep = args.check and i == 0
        kernel_out = base = None
        for side in ("kernel", "pandas") if i % 2 == 0 else ("pandas", "kernel"):
            if side == "kernel":
                with rss_kernel:
                    out = time_kernel(x, device, kernel_clock)
                peak_kernel = max(peak_kernel, rss_kernel.peak)
                kernel_out = out if keep else None
            else:
                with rss_pandas:
                    result = time_pandas(x, pandas_clock)
                peak_pandas = max(peak_pandas, rss_pandas.peak)
                base = result if keep else None
            out = result = None
        if kernel_out is not None and base is not None:
            check(x, kernel_out, base)
        kernel_out = base = None
        if device.type == "cuda":
            cuda_peak = max(cuda_peak, torch.cuda.max_memory_allocated(device))

    inputs_gib = sum(d.nbytes for d in data) / 2**30
    kernel_s, pandas_s = kernel_clock.wall, pandas_clock.wall
    print(f"kernel  {kernel_clock}  compute_features, all 21 columns")
    print(f"pandas  {pandas_clock}  rolling mean/std, ewm, sliding-window WMA, boll")
    print(f"ratio = pandas_seconds / kernel_seconds = {pandas_s / kernel_s:.2f}")
    print(
        "(system time is mostly first-touch page faults of the freshly allocated outputs, "
        "which both sides pay)"
    )
    print(
        f"peak RSS: kernel {peak_kernel / 2**30:.2f} GiB, pandas {peak_pandas / 2**30:.2f} GiB "
        f"(whole process while each side ran; includes {inputs_gib:.2f} GiB of inputs)"
    )
    if device.type == "cuda":
        moved = n * t * 8 * (1 + 18)  # read the input once, write 18 distinct outputs
        print(
            f"cuda: {kernel_s * 1e3:.1f} ms, effective {moved / kernel_s / 1e9:.1f} GB/s "
            f"(input read + 18 distinct outputs written; boll_mid aliases sma; host→device "
            f"copy of the input not timed)"
        )
        print(f"cuda peak memory allocated: {cuda_peak / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
