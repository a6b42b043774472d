"""Candlestick picture of one code's monthly K-lines, as Markdown metadata for the Dagster UI.

The PNG is embedded as a base64 data URI so it travels with the materialization event and
needs no file server; at 100 dpi and ≤ 24 candles it stays around 20–30 KB.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # no display in daemons and tests

import matplotlib.pyplot as plt
import pandas as pd

UP, DOWN = "#d62728", "#2ca02c"  # A-share convention: red up, green down


def candlestick_png(bars: pd.DataFrame, title: str) -> bytes:
    """bars: columns month, open, high, low, close, volume (one row per month, any order)."""
    bars = bars.sort_values("month").reset_index(drop=True)
    fig, (ax, vol) = plt.subplots(
        2, 1, figsize=(8, 4.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    x = range(len(bars))
    up = (bars["close"] >= bars["open"]).to_numpy()
    colors = [UP if u else DOWN for u in up]
    ax.vlines(x, bars["low"], bars["high"], colors=colors, linewidth=1)
    bottoms = bars[["open", "close"]].min(axis=1)
    heights = (bars["close"] - bars["open"]).abs()
    span = float(bars["high"].max() - bars["low"].min()) or 1.0
    ax.bar(x, heights.clip(lower=span * 0.002), bottom=bottoms, color=colors, width=0.6)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    vol.bar(x, bars["volume"], color=colors, width=0.6)
    vol.set_ylabel("volume", fontsize=8)
    labels = [pd.Timestamp(m).strftime("%Y-%m") for m in bars["month"]]
    step = max(1, len(labels) // 8)
    vol.set_xticks(list(x)[::step], labels[::step], fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def candlestick_markdown(bars: pd.DataFrame, title: str) -> str:
    """Markdown holding the candlestick PNG as a data URI (MetadataValue.md)."""
    if bars.empty:
        return f"*{title}: no rows*"
    encoded = base64.b64encode(candlestick_png(bars, title)).decode()
    return f"![{title}](data:image/png;base64,{encoded})"
