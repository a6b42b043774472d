"""`kline stocks …` and `kline bars …`: the stock domain's commands, mounted by the root
`kline` group.

Other tools script `kline bars`, so its inputs, outputs and exit codes are a contract: a
malformed tick file stops with one line naming the file and line (exit 2, as every deliberate
error of `kline`), and nothing is written. Both bar commands run the one kernel
(`kline_assets.kernels.bars`), so synthesised bars and history bars follow the same vendor
conventions; `query` is the merged query of `kline_assets.stocks.read` (vendor history,
synthesised archive, today's bars in Redis).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click
from dagster import AssetCheckEvaluation, AssetMaterialization

from kline_assets.kernels.bars import PERIODS, PROFILES
from kline_assets.lib.instance import get_instance
from kline_assets.resources.build import store_resources

from . import monthly
from .partitions import FIRST_MONTH, window_for_months
from .refresh_events import record_in_dagster, refresh_events
from .sessions import provisional_note
from .tickfiles import synth_file


@click.group("stocks")
def stocks() -> None:
    """Stock K-lines: stock_1min_qfq and stock_monthly_kline."""


@stocks.command("refresh")
@click.option("--from", "from_month", metavar="YYYY-MM", default=None,
              help=f"First month to refresh [default: {FIRST_MONTH}].")
@click.option("--to", "to_month", metavar="YYYY-MM", default=None,
              help="Last month to refresh [default: the current Beijing month].")
@click.option("--force", is_flag=True,
              help="TimescaleDB: recompute even months with no recorded change "
              "(force => true). The plain path always recomputes.")
@click.option("--recreate", is_flag=True,
              help="Drop stock_monthly_kline with CASCADE (its index, refresh policy job, "
              "materialized rows, dependent views; each is listed) and create it again — "
              "for a changed definition, or to switch a plain table to a continuous aggregate.")
@click.option("--yes", is_flag=True, help="Do not ask before --recreate drops the aggregate.")
def refresh_command(
    from_month: str | None, to_month: str | None, force: bool, recreate: bool, yes: bool
) -> None:
    """Create stock_monthly_kline if missing and refresh it over [--from, --to].

    Same as a Dagster backfill of stock_monthly_kline's partitions, or the
    monthly_kline_full_refresh job: the months that hold rows are recorded in Dagster as
    materializations, with the asset's checks evaluated for them, in a run named
    kline_stocks_refresh. Reads the DSN
    from KLINE_PG_DSN and the Dagster instance from DAGSTER_HOME.
    """
    try:
        window = window_for_months(from_month, to_month)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--from' / '--to'") from exc
    postgres = store_resources()["postgres"]
    if recreate and window.label.split("..")[0] != FIRST_MONTH:
        click.echo(f"note: --recreate empties every month; only {window.label} is refreshed now")
    if recreate and not yes:
        with postgres.connect() as conn:
            doomed = monthly.describe_drop(conn)
        if doomed:
            click.confirm(f"Drop and recreate in {postgres.address}: {'; '.join(doomed)}?",
                          abort=True)
    report = monthly.refresh(postgres, window, force=force, recreate=recreate,
                             announce=click.echo)
    events = refresh_events(postgres, report, refreshed_by="kline stocks refresh")
    with get_instance() as instance:
        run = record_in_dagster(instance, events, "kline_stocks_refresh",
                                f"kline stocks refresh {window.label} on {report.path.label}")
    months = sum(isinstance(e, AssetMaterialization) for e in events)
    failed = [e for e in events if isinstance(e, AssetCheckEvaluation) and not e.passed]
    click.echo(
        f"{monthly.VIEW} {window.label} on {report.path.label} ({postgres.address}): "
        f"{report.rows} rows, {report.codes} codes, {report.months} months "
        f"in {report.seconds:.1f}s"
    )
    click.echo(f"recorded in Dagster (run {run.run_id}): {months} month(s) with rows "
               "materialized, "
               f"{len(events) - months} check evaluation(s), {len(failed)} failed"
               + "".join(f"\n  failed: {e.check_name} {e.partition}" for e in failed))


def _periods(value: str) -> tuple[int, ...]:
    try:
        periods = tuple(int(p) for p in value.split(",") if p.strip())
    except ValueError as exc:
        raise click.BadParameter(f"{value!r}: comma-separated minutes") from exc
    bad = [p for p in periods if p not in PERIODS]
    if bad or not periods:
        raise click.BadParameter(f"{value!r}: choose from {','.join(map(str, PERIODS))}")
    return tuple(dict.fromkeys(periods))


@click.group("bars")
def bars() -> None:
    """1/5/15/30/60-minute bars: from tick files, and from the vendor history."""


@bars.command("synth")
@click.argument("ticks_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output file, written in the input's format (CSV or Parquet).")
@click.option("--periods", default="1,5,15,30,60", show_default=True,
              help="Comma-separated bar periods in minutes.")
@click.option("--profile", type=click.Choice(PROFILES), default="end", show_default=True,
              help="end: 240 bars a day (TDX, JoinQuant, RiceQuant); tushare: 241 with a "
              "09:30 auction bar (Tushare, EastMoney).")
@click.option("--cumulative/--per-print", default=False, show_default=True,
              help="Volume and amount are the day's running totals (snapshots) or per print.")
@click.option("--volume-unit", type=click.Choice(["shares", "lots"]), default="shares",
              show_default=True, help="Unit of the input volume; output is always shares.")
@click.option("--fill", is_flag=True,
              help="Flat zero-volume 1-minute bars for empty session minutes; N-minute bars are "
                   "built from the filled ones.")
def synth_command(ticks_file: Path, out: Path, periods: str, profile: str, cumulative: bool,
                  volume_unit: str, fill: bool) -> None:
    """Synthesise bars from TICKS_FILE (columns symbol, time, price, volume, amount; optional
    tick_id, high, low; time Beijing wall clock, naive or +08:00)."""
    chosen = _periods(periods)
    made, report = synth_file(ticks_file, out, chosen, profile=profile,
                              cumulative=cumulative, volume_unit=volume_unit, fill=fill)
    click.echo(report.summary())
    counts = ", ".join(f"{p}-minute {len(b)}" for p, b in made.items())
    click.echo(f"wrote {out}: {counts} bars ({profile} profile)")


def _clock(value: str, option: str) -> datetime:
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"):
        try:
            return datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
    raise click.BadParameter(f"{value!r}: expected 'YYYY-MM-DD HH:MM' (24-hour, Asia/Shanghai)",
                             param_hint=option)


@bars.command("query")
@click.argument("symbol")
@click.option("--period", type=click.Choice([str(p) for p in PERIODS]), default="1",
              show_default=True, help="Bar period in minutes.")
@click.option("--from", "start", required=True, metavar="'YYYY-MM-DD HH:MM'",
              help="First frame, Asia/Shanghai.")
@click.option("--to", "end", required=True, metavar="'YYYY-MM-DD HH:MM'",
              help="Last frame, Asia/Shanghai.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of bars.")
def query_command(symbol: str, period: str, start: str, end: str, as_json: bool) -> None:
    """N-minute bars of SYMBOL: the vendor history (stock_1min_qfq), then the synthesised
    archive (stock_1min_synth), then today's bars in Redis, each bar once with its source."""
    from .read import bars as merged_bars

    lo, hi = _clock(start, "--from"), _clock(end, "--to")
    if hi < lo:
        raise click.BadParameter("--to is before --from", param_hint="--to")
    rows = merged_bars(symbol, int(period), lo, hi)
    note = provisional_note(lo, hi)
    if note:  # on stderr: the table or the JSON on stdout keep their shape
        click.echo(f"calendar: {note}", err=True)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"no {period}-minute bars of {symbol} between {start} and {end}")
        return
    from tabulate import tabulate

    click.echo(tabulate(rows, headers="keys", tablefmt="simple", floatfmt=".6g"))
