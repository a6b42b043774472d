"""Moving-average and Bollinger features of (N, T) float64 series, on CPU or CUDA.

Results match pandas — ``rolling(w).mean()``, ``ewm(span=w, adjust=False).mean()``, a
w, w−1, …, 1 weighted mean — and the exact population sd of each window to far below
1e-6 yen on 35,040-bucket series of ~1e5-yen prices. How:

* Rolling statistics come from binary doubling, not prefix-sum differences. A state for
  windows of length L holds (mean, M2, weighted sum) per end column; adjacent states merge
  with Chan's pairwise formula ``M2 = M2a + M2b + δ²·na·nb/n``. ``E[x²] − E[x]²`` from
  prefix sums cancels catastrophically at this price level (sd errors of 1e-3 yen where
  the window is really constant); with merged means, a constant window has δ = 0 at every
  merge, so its sd is exactly 0 and its mean exactly the constant. Cost O(N·T·log w), no
  per-timestep Python loop. (pandas 3's own rolling std dropped its constant-window
  shortcut and is itself off by up to ~1e-3 yen there; tests use an exact reference.)
* Each row is centred on its first observation, which keeps sums small and makes the EMA
  seed free: with the NaN prefix set to 0 (the first value, centred), an EMA started at 0
  stays 0 through the prefix and takes the first value at the first observation.
* The EMA ``e[t] = a·e[t−1] + α·y[t]`` is a scaled cumulative sum inside blocks
  (``e = aᵗ·cumsum(α·a⁻ᵗ·y)``, block length chosen so a⁻ᵗ stays far from overflow; the
  rounding error stays ~eps·|y|) plus a carry between blocks — the same code on CPU and
  CUDA, and faster on CPU than ``scipy.signal.lfilter`` once row-chunked.
* NaN does the masking: the rolling input keeps its NaN prefix, so every window touching
  it is NaN, exactly where pandas (min_periods = w) is NaN.
* On CPU rows are processed in chunks of ~2^17 elements so that the ~20 live chunk-sized
  buffers stay in cache (memory traffic, not arithmetic, is the limit); buffers are
  recycled across merges and chunks instead of being reallocated. The chunks are shared
  out to ``torch.get_num_threads()`` worker threads while torch's own intra-op threading
  is set to 1 for the duration of the call (restored afterwards; calls are serialised by
  a lock): per-op OpenMP barriers on ~100 small ops per chunk made the kernel 25× slower
  when other processes were competing for the cores.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import torch

from kline_assets.kernels.feature_names import (  # noqa: F401  (re-exported)
    FEATURE_COLUMNS,
    KINDS,
    WINDOWS_MINUTES_TO_BUCKETS,
    feature_columns,
)

# Elements per row chunk. CPU: ~20 live chunk-sized buffers should fit the last-level cache.
# CUDA: big enough to keep the device busy, small enough for a few GiB of scratch.
_CPU_CHUNK_ELEMENTS = 1 << 17
_CUDA_CHUNK_ELEMENTS = 1 << 25
# CPU parallelism is one worker thread per torch thread, each on its own row chunks, with
# torch's intra-op threading off meanwhile: ~100 small ops per chunk each ending in an
# OpenMP barrier collapsed (25× slower, measured) when other processes shared the cores.
_CPU_LOCK = threading.Lock()
# EMA blocks keep a^-k ≤ e^460 ≈ 1e200, far from float64 overflow even times 1e6-yen values.
_EMA_LOG_SCALE = 460.0


def forward_fill(x: torch.Tensor) -> torch.Tensor:
    """Carry the last non-NaN value forward along the last dimension.

    Positions before a row's first observation stay NaN (there is nothing to carry).
    Vectorised as a running maximum of "index of the latest observation", then a gather.
    """
    if x.shape[-1] == 0:
        return x.clone()
    missing = torch.isnan(x)
    idx = torch.arange(x.shape[-1], device=x.device).expand(x.shape)
    latest = torch.cummax(idx.masked_fill(missing, -1), dim=-1).values
    filled = torch.gather(x, -1, latest.clamp(min=0))
    return filled.masked_fill_(latest < 0, float("nan"))


def compute_features(
    x: torch.Tensor, windows: Mapping[int, int] = WINDOWS_MINUTES_TO_BUCKETS
) -> dict[str, torch.Tensor]:
    """All moving-average features of every row of ``x``.

    ``x`` is (N, T) float64 (other float dtypes are promoted), already forward-filled:
    each row is a NaN prefix followed by finite values, or all NaN. ``windows`` maps the
    minutes used in column names to a window length in buckets. Returns
    ``feature_columns(windows)`` → (N, T) float64 tensors on ``x``'s device:

    * ``sma_m``: mean of the last w values; NaN until w values exist.
    * ``wma_m``: weights w, w−1, …, 1 (newest heaviest) over w(w+1)/2; NaN until w values.
    * ``ema_m``: α = 2/(w+1), seeded with the first value, NaN before it.
    * ``boll_mid/up/low/width_m``: SMA, ± 2 population sd (ddof=0), width = up − low.

    ``boll_mid_m`` is the same tensor object as ``sma_m`` (identical by definition; this saves
    a copy and N·T·8 bytes per window) — copy one before modifying it in place.

    Raises ValueError if a row has a NaN after its first observation: forward-fill first
    (an EMA across gaps would otherwise silently differ from what the caller expects).
    """
    if x.dim() != 2:
        raise ValueError(f"compute_features expects an (N, T) tensor, got shape {tuple(x.shape)}")
    for minutes, w in windows.items():
        if int(w) != w or w < 1:
            raise ValueError(f"window {minutes!r} → {w!r} buckets: must be a positive integer")
    x = x.to(torch.float64)
    n, t = x.shape
    out: dict[str, torch.Tensor] = {}
    for name in feature_columns(windows):
        if not name.startswith("boll_mid_"):
            out[name] = _empty((n, t), x.device)
    for minutes in windows:
        out[f"boll_mid_{minutes}"] = out[f"sma_{minutes}"]
    out = {name: out[name] for name in feature_columns(windows)}  # table order
    if n == 0 or t == 0:
        return out
    per_chunk = _CUDA_CHUNK_ELEMENTS if x.device.type == "cuda" else _CPU_CHUNK_ELEMENTS
    rows = max(1, per_chunk // t)
    plan = _doubling_plan(sorted({int(w) for w in windows.values()}))
    ema_plans = {int(w): _ema_plan(int(w), t, x.device) for w in windows.values()}
    starts = list(range(0, n, rows))

    def run(stripe: list[int]) -> None:
        pool = _Pool((min(rows, n), t), x.device)
        for r0 in stripe:
            r1 = min(n, r0 + rows)
            chunk_out = {k: v[r0:r1] for k, v in out.items()}
            _features_chunk(x[r0:r1], windows, plan, ema_plans, chunk_out, pool)

    if x.device.type != "cpu":
        run(starts)
        return out
    with _CPU_LOCK:
        threads = torch.get_num_threads()
        workers = max(1, min(threads, len(starts)))
        torch.set_num_threads(1)
        try:
            if workers == 1:
                run(starts)
            else:
                with ThreadPoolExecutor(workers, thread_name_prefix="kline-features") as ex:
                    list(ex.map(run, [starts[i::workers] for i in range(workers)]))
        finally:
            torch.set_num_threads(threads)
    return out


# --------------------------------------------------------------------------- buffers


def _empty(shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    """Uninitialised float64 tensor; on CPU backed by a NumPy array.

    NumPy asks Linux for transparent huge pages on large arrays (torch's allocator does
    not unless THP_MEM_ALLOC_ENABLE is set), and the first-touch page faults of 4 KiB pages
    were measured as the largest single cost of writing 18 (N, T) outputs: ~3× slower.
    """
    if device.type == "cpu":
        return torch.from_numpy(np.empty(shape, dtype=np.float64))
    return torch.empty(shape, dtype=torch.float64, device=device)


class _Pool:
    """Recycled (rows, T) float64 buffers: reallocating them per operation costs page faults."""

    def __init__(self, shape: tuple[int, int], device: torch.device) -> None:
        self.shape, self.device = shape, device
        self.free: list[torch.Tensor] = []
        self.rows = shape[0]

    def get(self) -> torch.Tensor:
        buf = self.free.pop() if self.free else None
        if buf is None:
            buf = _empty(self.shape, self.device)
        return buf[: self.rows]

    def put(self, *bufs: torch.Tensor | None) -> None:
        for buf in bufs:
            if buf is not None:
                base = buf._base if buf._base is not None else buf
                self.free.append(base)


# --------------------------------------------------------------------------- rolling windows


class _Window(NamedTuple):
    """Statistics of the length-``length`` window ending at each column (centred values).

    Columns whose window would start before column 0 hold filler; the outputs for them are
    set to NaN because such a window cannot contain ``length`` values.
    """

    length: int
    mean: torch.Tensor
    m2: torch.Tensor | None  # sum of squared deviations from the window mean; None ≡ 0
    wsum: torch.Tensor  # Σ k·value, k = 1 (oldest) … length (newest)


def _merge(older: _Window, newer: _Window, pool: _Pool) -> _Window:
    """Window of length la+lb = ``older`` (ending lb columns earlier) followed by ``newer``.

    Chan et al.'s pairwise update on means: δ = mean_b − mean_a, mean = mean_a + δ·lb/n,
    M2 = M2a + M2b + δ²·la·lb/n, and for the weighted sum W = W_a + W_b + la·S_b (the newer
    block's weights are its own 1…lb shifted by la). Columns < lb copy ``newer`` (filler).
    """
    la, lb = older.length, newer.length
    n = la + lb
    t = newer.mean.shape[1]
    keep = max(0, t - lb)  # columns of ``older`` that line up with ``newer``
    a_mean, b_mean = older.mean[:, :keep], newer.mean[:, lb:]

    delta = pool.get()
    d = delta[:, :keep]
    torch.sub(b_mean, a_mean, out=d)

    mean = pool.get()
    mean[:, :lb] = newer.mean[:, :lb]
    torch.add(a_mean, d, alpha=lb / n, out=mean[:, lb:])

    m2 = pool.get()
    if newer.m2 is None:
        m2[:, :lb] = 0.0
    else:
        m2[:, :lb] = newer.m2[:, :lb]
    tail = m2[:, lb:]
    if older.m2 is None and newer.m2 is None:
        torch.mul(d, d, out=tail)
        tail.mul_(la * lb / n)
    else:
        if older.m2 is None or newer.m2 is None:
            tail.copy_(newer.m2[:, lb:] if older.m2 is None else older.m2[:, :keep])
        else:
            torch.add(older.m2[:, :keep], newer.m2[:, lb:], out=tail)
        tail.addcmul_(d, d, value=la * lb / n)

    wsum = pool.get()
    wsum[:, :lb] = newer.wsum[:, :lb]
    torch.add(older.wsum[:, :keep], newer.wsum[:, lb:], out=wsum[:, lb:])
    wsum[:, lb:].add_(b_mean, alpha=la * lb)
    pool.put(delta)
    return _Window(n, mean, m2, wsum)


def _doubling_plan(lengths: list[int]) -> list[tuple[int, int, int]]:
    """Merge steps (result, older, newer) that produce every window length in ``lengths``.

    Powers of two come from doubling; a length whose half is already built costs one merge
    (120 = 60 ⊕ 60); any other length is composed from its binary decomposition, newest
    block smallest (60 = 32 ⊕ 16 ⊕ 8 ⊕ 4). For windows 8/60/120 that is 9 merges.
    """
    known = {1}
    steps: list[tuple[int, int, int]] = []

    def power(p: int) -> None:
        if p not in known:
            power(p // 2)
            steps.append((p, p // 2, p // 2))
            known.add(p)

    for w in lengths:
        if w in known:
            continue
        if w % 2 == 0 and w // 2 in known:
            steps.append((w, w // 2, w // 2))
            known.add(w)
            continue
        bits = [1 << k for k in range(w.bit_length()) if w >> k & 1]
        acc = bits[0]
        power(acc)
        for p in bits[1:]:
            power(p)
            if acc + p not in known:
                steps.append((acc + p, p, acc))
                known.add(acc + p)
            acc += p
    return steps


def _rolling(
    y: torch.Tensor, lengths: list[int], plan: list[tuple[int, int, int]], pool: _Pool
) -> dict[int, _Window]:
    """Window states for each requested length; intermediates go back to the pool."""
    last_use: dict[int, int] = {}
    for i, (_, a, b) in enumerate(plan):
        last_use[a] = last_use[b] = i
    wanted = set(lengths)
    states: dict[int, _Window] = {1: _Window(1, y, None, y)}
    for i, (res, a, b) in enumerate(plan):
        states[res] = _merge(states[a], states[b], pool)
        for used in {a, b}:
            if last_use[used] == i and used not in wanted and used != 1:
                st = states.pop(used)
                pool.put(st.mean, st.m2, st.wsum)
    return {w: states[w] for w in lengths}


# --------------------------------------------------------------------------- EMA


class _EmaPlan(NamedTuple):
    """Per-window constants of the blocked EMA, shared by every row chunk."""

    a: float  # 1 − α
    block: int  # columns per block
    nblk: int
    up: torch.Tensor  # (T,) α·a^(−k), k = column index within its block
    down: torch.Tensor  # (T,) a^k
    decay: torch.Tensor  # (nblk−1, nblk−1) lower-triangular (a^block)^(i−j)


def _ema_plan(w: int, t: int, device: torch.device) -> _EmaPlan:
    """Block length C keeps a^(−C) ≤ e^460, far from overflow even for 1e6-yen values."""
    alpha = 2.0 / (w + 1)
    a = 1.0 - alpha
    block = t if a == 0.0 else max(1, min(t, int(_EMA_LOG_SCALE / -math.log(a))))
    nblk = -(-t // block)
    k = torch.arange(block, dtype=torch.float64, device=device)
    up = (alpha * torch.pow(a, -k)).repeat(nblk)[:t] if a else torch.ones(t, device=device)
    down = torch.pow(a, k).repeat(nblk)[:t] if a else torch.ones(t, device=device)
    lag = torch.arange(max(0, nblk - 1), device=device, dtype=torch.float64)
    lag = lag[:, None] - lag[None, :]
    decay = torch.where(lag >= 0, torch.pow(a**block, lag.clamp(min=0)), 0.0)
    decay = torch.where(decay < 1e-300, 0.0, decay)  # keep subnormals out of the product
    return _EmaPlan(a, block, nblk, up.to(torch.float64), down.to(torch.float64), decay)


def _ema_centred(y0: torch.Tensor, plan: _EmaPlan, pool: _Pool) -> torch.Tensor:
    """EMA of the rows of ``y0`` started from e[−1] = 0, divided by ``plan.down``.

    Returned in a pool buffer; the caller multiplies by ``plan.down`` while adding the
    centre back (one fused pass instead of two).

    In a block of C columns entered with carry e_in, e[k] = a^k·(a·e_in + P[k]) with
    P = cumsum(α·a^(−j)·y[j]) — one cumulative sum. Each rounding error in P is scaled back
    down by a^k, so the result is accurate to ~eps·|y| however long the block. Block-end
    values obey E_j = a^C·E_(j−1) + L_j, solved by a small (blocks × blocks) product.
    """
    n = y0.shape[0]
    a, block, nblk = plan.a, plan.block, plan.nblk
    res = pool.get()
    if a == 0.0:  # w == 1: the EMA is the series itself (down ≡ 1)
        return res.copy_(y0)
    body = (nblk - 1) * block  # columns of the full blocks before the last one
    torch.mul(y0, plan.up, out=res)
    if nblk > 1:
        res[:, :body].view(n, nblk - 1, block).cumsum_(dim=2)
    res[:, body:].cumsum_(dim=1)
    if nblk > 1:
        ends = res[:, block - 1 : body : block] * a ** (block - 1)  # local e at block ends
        carry = (ends @ plan.decay.T).mul_(a)  # a·E_j, added to P of block j + 1
        if nblk > 2:
            res[:, block:body].view(n, nblk - 2, block).add_(carry[:, :-1, None])
        res[:, body:].add_(carry[:, -1:])
    return res  # still to be multiplied by plan.down (fused with the caller's add)


# --------------------------------------------------------------------------- driver


def _features_chunk(
    x: torch.Tensor,
    windows: Mapping[int, int],
    plan: list[tuple[int, int, int]],
    ema_plans: dict[int, _EmaPlan],
    out: dict[str, torch.Tensor],
    pool: _Pool,
) -> None:
    """All features of one row chunk, written into ``out`` (row slices of the results)."""
    n, t = x.shape
    pool.rows = n
    missing = torch.isnan(x)
    if bool(torch.any(missing[:, 1:] & ~missing[:, :-1])):  # a NaN after a value
        raise ValueError(
            "compute_features needs forward-filled rows: NaN only before the first value"
        )
    first = missing.sum(dim=1)
    centre = x.gather(1, first.clamp(max=t - 1)[:, None])
    centre = torch.where(first[:, None] < t, centre, 0.0)
    y = pool.get()
    torch.sub(x, centre, out=y)  # NaN prefix kept: it masks the rolling outputs
    y0 = pool.get()
    torch.nan_to_num(y, nan=0.0, out=y0)  # prefix = first value (centred 0): EMA seed
    centre_nan = pool.get()
    torch.add(centre, y, alpha=0.0, out=centre_nan)  # centre, NaN on the prefix

    for minutes, w in windows.items():
        plan_w = ema_plans[int(w)]
        e = _ema_centred(y0, plan_w, pool)
        torch.addcmul(centre_nan, e, plan_w.down, out=out[f"ema_{minutes}"])
        pool.put(e)
    pool.put(y0)

    lengths = sorted({int(w) for w in windows.values()})
    states = _rolling(y, lengths, plan, pool)
    rooted: set[int] = set()
    for minutes, w in windows.items():
        w = int(w)
        st = states[w]
        mid = out[f"sma_{minutes}"]  # also boll_mid
        torch.add(centre, st.mean, out=mid)
        wma = out[f"wma_{minutes}"]
        torch.add(centre, st.wsum, alpha=2.0 / (w * (w + 1)), out=wma)
        up, low = out[f"boll_up_{minutes}"], out[f"boll_low_{minutes}"]
        if st.m2 is None:  # w == 1
            up.copy_(mid)
            low.copy_(mid)
        else:
            if w not in rooted:  # M2 is not needed any more: take √M2 in place, once
                st.m2.sqrt_()
                rooted.add(w)
            root = st.m2  # 2·sd = √M2 · 2/√w
            torch.add(mid, root, alpha=2.0 / math.sqrt(w), out=up)
            torch.sub(mid, root, alpha=2.0 / math.sqrt(w), out=low)
        torch.sub(up, low, out=out[f"boll_width_{minutes}"])
        if w > 1:  # windows that would start before column 0
            for name in ("sma", "wma", "boll_up", "boll_low", "boll_width"):
                out[f"{name}_{minutes}"][:, : w - 1] = float("nan")
    for st in states.values():
        if st.length != 1:
            pool.put(st.mean, st.m2, st.wsum)
    pool.put(y, centre_nan)
