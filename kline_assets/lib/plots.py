"""Pictures for the Dagster UI: PNGs embedded in markdown metadata as data URIs."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from dagster import MetadataValue


def png_markdown(png: bytes, title: str) -> str:
    """Markdown that shows a PNG inline: the Dagster UI renders data URIs in md metadata."""
    data = base64.b64encode(png).decode()
    return f"**{title}**\n\n![{title}](data:image/png;base64,{data})"


def figure_png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def figure_markdown(fig: plt.Figure, title: str) -> MetadataValue:
    return MetadataValue.md(png_markdown(figure_png(fig), title))


def features_markdown(rows, scope: str, window: int = 900) -> MetadataValue:
    """One scope's mean with EMA and Bollinger bands (a feature frame's columns)."""
    df = rows[rows["scope"] == scope].sort_values("bucket")
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.fill_between(df["bucket"], df[f"boll_low_{window}"].astype(float),
                    df[f"boll_up_{window}"].astype(float), color="tab:blue", alpha=0.15,
                    label=f"Bollinger {window} min (±2σ)")
    ax.plot(df["bucket"], df["mean"].astype(float), lw=0.6, color="0.3", label="cross-shop mean")
    ax.plot(df["bucket"], df[f"ema_{window}"].astype(float), lw=1.2, color="tab:orange",
            label=f"EMA {window} min")
    ax.set_ylabel("yen")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d", tz=df["bucket"].dt.tz))
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return figure_markdown(fig, f"{scope}: mean, EMA and Bollinger ({window} min)")
