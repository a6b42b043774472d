"""Candlestick picture of one code's monthly K-lines, as Markdown metadata for the Dagster UI.

The PNG travels inside the materialization event (kline_assets.lib.plots embeds it as a data URI),
so it needs no file server; at ≤ 24 candles it stays around 20–30 KB.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from kline_assets.lib.plots import figure_png, png_markdown

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
    return figure_png(fig)


def candlestick_markdown(bars: pd.DataFrame, title: str) -> str:
    """Markdown holding the candlestick PNG as a data URI (MetadataValue.md)."""
    if bars.empty:
        return f"*{title}: no rows*"
    return png_markdown(candlestick_png(bars, title), title)
