"""`kline bars publish-vendor` and `kline bars ingest`: a black-box contract other tools script.

Errors a user can act on (an unreachable store, a malformed file) print one line and exit 2
(the root `kline` command's convention); the consumer stops gracefully on SIGTERM/SIGINT,
after the batch in hand.
"""

from __future__ import annotations

from pathlib import Path

import click
import redis

from kline_assets.lib.errors import ServiceUnavailableError
from kline_assets.lib.signals import stop_on_signals
from kline_assets.resources.build import store_resources
from kline_assets.resources.dsn import redact

from .keys import DEFAULT_GROUP, VendorKeys


def _lost(url: str, exc: redis.RedisError) -> ServiceUnavailableError:
    """Redis went away mid-run: say where, without credentials; the entries in hand stay
    pending and are delivered again."""
    return ServiceUnavailableError(
        f"Redis at {redact(url)} (KLINE_REDIS_URL) failed: {redact(str(exc))}", store="Redis",
        address=redact(url))


@click.command("publish-vendor")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--stream", default=None, help="Redis stream [default: kline:vendor:bars].")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Bars per second (default: as fast as Redis takes them).")
def publish_vendor_command(file: Path, stream: str | None, rate: float | None) -> None:
    """Replay the vendor bar FILE (a landing CSV/Parquet plus an optional `period` column,
    default 1) into the vendor stream in time order."""
    from .publish import publish_file

    resource = store_resources()["redis"]
    stream = stream or VendorKeys(resource.key_prefix).stream
    try:
        n, seconds = publish_file(resource.client(), file, stream, rate)
    except redis.RedisError as exc:
        raise _lost(resource.url, exc) from exc
    click.echo(f"published {n} bars to {stream} in {seconds:.2f} s "
               f"({n / max(seconds, 1e-9):,.0f}/s)")


@click.command("ingest")
@click.option("--stream", default=None, help="Redis stream [default: kline:vendor:bars].")
@click.option("--group", default=DEFAULT_GROUP, show_default=True, help="Consumer group.")
@click.option("--consumer", default=None, help="Consumer name (default: host-pid).")
@click.option("--until-idle", type=float, default=None, metavar="SECONDS",
              help="Exit once the stream is drained and has been idle this long.")
@click.option("--batch", type=click.IntRange(min=1, max=100_000), default=5000,
              show_default=True, help="Entries per read.")
@click.option("--claim-idle-ms", type=click.IntRange(min=1), default=30_000,
              show_default=True, help="Claim entries pending this long with a dead consumer.")
@click.option("--report-every", type=click.FloatRange(min=0.1), default=5.0,
              show_default=True, help="Seconds between status lines.")
@click.option("--volume-unit", type=click.Choice(["shares", "lots"]), default="shares",
              show_default=True, help="Unit of the feed's volume (lots: ×100 shares).")
@click.option("--no-events", is_flag=True,
              help="Do not report observations of stock_1min to the Dagster instance.")
def ingest_command(stream: str | None, group: str, consumer: str | None,
                   until_idle: float | None, batch: int, claim_idle_ms: int,
                   report_every: float, volume_unit: str, no_events: bool) -> None:
    """Vendor bars from the stream into stock_1min_qfq (1-minute) and stock_bars_vendor
    (5/15/30/60-minute): validated, committed in PostgreSQL, then acknowledged — exactly once."""
    from kline_assets.lib.instance import get_instance

    from .events import MonthEvents
    from .ingest import IngestOptions, Ingestor

    resources = store_resources()
    resource = resources["redis"]
    keys = VendorKeys(resource.key_prefix)
    options = IngestOptions(stream=stream or keys.stream, group=group, batch=batch,
                            claim_idle_ms=claim_idle_ms, until_idle=until_idle,
                            report_every=report_every, volume_unit=volume_unit)
    if consumer:
        options.consumer = consumer
    events = None if no_events else MonthEvents(get_instance, options.stream, group)
    try:
        worker = Ingestor(resource.client(), resources["postgres"], options, keys,
                          echo=click.echo, events=events)
        stop_on_signals(worker.stop)
        stats = worker.run()
    except redis.RedisError as exc:
        raise _lost(resource.url, exc) from exc
    click.echo(f"stopped: {stats.entries} entries, {stats.inserted} bars inserted, "
               f"{stats.duplicates} duplicates, {stats.corrections} corrections, "
               f"{stats.rejected} rejected to {keys.dead(options.stream)}, "
               f"{stats.redelivered} already committed")
