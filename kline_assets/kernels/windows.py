"""The building blocks of the features kernel (`kernels.features` drives them): recycled
float64 buffers, rolling-window statistics by binary doubling with Chan's pairwise merge, and
the EMA as a scaled cumulative sum inside blocks plus a carry between them. Why each is built
so is told in `kernels.features`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

# EMA blocks keep a^-k ≤ e^460 ≈ 1e200, far from float64 overflow even times 1e6-yen values.
_EMA_LOG_SCALE = 460.0


# --------------------------------------------------------------------------- buffers


def empty_f64(shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    """Uninitialised float64 tensor; on CPU backed by a NumPy array.

    NumPy asks Linux for transparent huge pages on large arrays (torch's allocator does
    not unless THP_MEM_ALLOC_ENABLE is set), and the first-touch page faults of 4 KiB pages
    were measured as the largest single cost of writing 18 (N, T) outputs: ~3× slower.
    """
    if device.type == "cpu":
        return torch.from_numpy(np.empty(shape, dtype=np.float64))
    return torch.empty(shape, dtype=torch.float64, device=device)


class Pool:
    """Recycled (rows, T) float64 buffers: reallocating them per operation costs page faults."""

    def __init__(self, shape: tuple[int, int], device: torch.device) -> None:
        self.shape, self.device = shape, device
        self.free: list[torch.Tensor] = []
        self.rows = shape[0]

    def get(self) -> torch.Tensor:
        buf = self.free.pop() if self.free else None
        if buf is None:
            buf = empty_f64(self.shape, self.device)
        return buf[: self.rows]

    def put(self, *bufs: torch.Tensor | None) -> None:
        for buf in bufs:
            if buf is not None:
                base = buf._base if buf._base is not None else buf
                self.free.append(base)


# --------------------------------------------------------------------------- rolling windows


class Window(NamedTuple):
    """Statistics of the length-``length`` window ending at each column (centred values).

    Columns whose window would start before column 0 hold filler; the outputs for them are
    set to NaN because such a window cannot contain ``length`` values.
    """

    length: int
    mean: torch.Tensor
    m2: torch.Tensor | None  # sum of squared deviations from the window mean; None ≡ 0
    wsum: torch.Tensor  # Σ k·value, k = 1 (oldest) … length (newest)


def merge_windows(older: Window, newer: Window, pool: Pool) -> Window:
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
    return Window(n, mean, m2, wsum)


def doubling_plan(lengths: list[int]) -> list[tuple[int, int, int]]:
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


def rolling(
    y: torch.Tensor, lengths: list[int], plan: list[tuple[int, int, int]], pool: Pool
) -> dict[int, Window]:
    """Window states for each requested length; intermediates go back to the pool."""
    last_use: dict[int, int] = {}
    for i, (_, a, b) in enumerate(plan):
        last_use[a] = last_use[b] = i
    wanted = set(lengths)
    states: dict[int, Window] = {1: Window(1, y, None, y)}
    for i, (res, a, b) in enumerate(plan):
        states[res] = merge_windows(states[a], states[b], pool)
        for used in {a, b}:
            if last_use[used] == i and used not in wanted and used != 1:
                st = states.pop(used)
                pool.put(st.mean, st.m2, st.wsum)
    return {w: states[w] for w in lengths}


# --------------------------------------------------------------------------- EMA


class EmaPlan(NamedTuple):
    """Per-window constants of the blocked EMA, shared by every row chunk."""

    a: float  # 1 − α
    block: int  # columns per block
    nblk: int
    up: torch.Tensor  # (T,) α·a^(−k), k = column index within its block
    down: torch.Tensor  # (T,) a^k
    decay: torch.Tensor  # (nblk−1, nblk−1) lower-triangular (a^block)^(i−j)


def ema_plan(w: int, t: int, device: torch.device) -> EmaPlan:
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
    return EmaPlan(a, block, nblk, up.to(torch.float64), down.to(torch.float64), decay)


def ema_centred(y0: torch.Tensor, plan: EmaPlan, pool: Pool) -> torch.Tensor:
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
