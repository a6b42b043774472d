"""`kline ticks publish|consume|handover`: a black-box contract other tools script.

Errors a user can act on (an unreachable store, a malformed file, a date beyond the calendar)
print one line and exit 2 (the root `kline` command's convention); the consumer stops
gracefully on SIGTERM/SIGINT.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
import redis

from kline_assets.kernels.bars import PROFILES
from kline_assets.lib.errors import ServiceUnavailableError
from kline_assets.lib.signals import stop_on_signals
from kline_assets.resources.build import store_resources
from kline_assets.resources.dsn import redact

from .keys import DEFAULT_GROUP, DEFAULT_STREAM, LiveKeys


def _redis() -> tuple[redis.Redis, LiveKeys]:
    resource = store_resources()["redis"]
    return resource.client(), LiveKeys(resource.key_prefix)


def _lost(exc: redis.RedisError) -> ServiceUnavailableError:
    """Redis went away mid-run: say where, without credentials; the entries in hand stay
    pending and are delivered again."""
    url = redact(store_resources()["redis"].url)
    return ServiceUnavailableError(
        f"Redis at {url} (KLINE_REDIS_URL) failed: {redact(str(exc))}", store="Redis",
        address=url)


@click.group("ticks")
def ticks() -> None:
    """Today's bars: ticks through a Redis stream into Redis, and the nightly hand-over."""


@ticks.command("publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--stream", default=DEFAULT_STREAM, show_default=True, help="Redis stream.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Ticks per second (default: as fast as Redis takes them).")
@click.option("--shards", type=click.IntRange(min=1, max=1024), default=None,
              help="Split by symbol into STREAM:{s}, s = crc32(symbol) mod SHARDS.")
def publish_command(file: Path, stream: str, rate: float | None, shards: int | None) -> None:
    """Replay the tick FILE (CSV/Parquet, as for `kline bars synth`) into a stream in time
    order (or into SHARDS streams, each in time order)."""
    from .publish import publish_file

    try:
        client, keys = _redis()
        n, seconds = publish_file(client, file, stream, rate, shards=shards, keys=keys)
    except redis.RedisError as exc:
        raise _lost(exc) from exc
    where = f"{shards} shards {stream}:{{0..{shards - 1}}}" if shards else stream
    click.echo(f"published {n} ticks to {where} in {seconds:.2f} s "
               f"({n / max(seconds, 1e-9):,.0f}/s)")


@ticks.command("consume")
@click.option("--stream", default=DEFAULT_STREAM, show_default=True, help="Redis stream.")
@click.option("--group", default=DEFAULT_GROUP, show_default=True, help="Consumer group.")
@click.option("--consumer", default=None, help="Consumer name (default: host-pid).")
@click.option("--until-idle", type=float, default=None, metavar="SECONDS",
              help="Exit once the stream is drained and has been idle this long.")
@click.option("--batch", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Entries per read.")
@click.option("--claim-idle-ms", type=click.IntRange(min=1), default=30_000,
              show_default=True, help="Claim entries pending this long with a dead consumer.")
@click.option("--report-every", type=float, default=5.0, show_default=True,
              help="Seconds between status lines.")
@click.option("--profile", type=click.Choice(PROFILES), default="end", show_default=True,
              help="Bar labels: end (240 a day) or tushare (241).")
@click.option("--cumulative/--per-print", default=False, show_default=True,
              help="Volume/amount are the day's running totals (snapshots) or per print.")
@click.option("--volume-unit", type=click.Choice(["shares", "lots"]), default="shares",
              show_default=True)
@click.option("--shard", default=None, metavar="s/N",
              help="Consume shard s of a feed published with --shards N (STREAM:{s}).")
def consume_command(stream: str, group: str, consumer: str | None, until_idle: float | None,
                    batch: int, claim_idle_ms: int, report_every: float, profile: str,
                    cumulative: bool, volume_unit: str, shard: str | None) -> None:
    """Fold ticks from the stream into 1-minute bars in Redis (crash-safe, resumable)."""
    from .consume import Consumer, ConsumerOptions
    from .keys import parse_shard, shard_stream

    part = parse_shard(shard) if shard else None
    if part:
        stream = shard_stream(stream, part[0])
    options = ConsumerOptions(stream=stream, group=group, batch=batch,
                              claim_idle_ms=claim_idle_ms, until_idle=until_idle,
                              report_every=report_every, profile=profile,
                              cumulative=cumulative, volume_unit=volume_unit)
    if consumer:
        options.consumer = consumer
    try:
        client, keys = _redis()
        if part:
            keys = shard_keys(client, keys, *part)
        worker = Consumer(client, options, keys, echo=click.echo)
        stop_on_signals(worker.stop)
        stats = worker.run()
    except redis.RedisError as exc:
        raise _lost(exc) from exc
    click.echo(f"stopped: {stats.ticks} ticks from {stats.entries} entries, "
               f"{stats.malformed} malformed dead-lettered to {keys.dead(stream)}")


def shard_keys(client: redis.Redis, keys: LiveKeys, s: int, n: int) -> LiveKeys:
    """Shard s's layout, after checking the feed is split into n (recording n if nothing
    is recorded yet: a consumer may start before the publisher)."""
    from kline_assets.lib.errors import KlineError

    current = client.get(keys.shards)
    if current is None:
        client.set(keys.shards, n)
    elif int(current) != n:
        raise KlineError(f"--shard {s}/{n}: the tick feed is split into {int(current)} shards "
                         f"({keys.shards}); consume with --shard s/{int(current)}")
    return keys.shard(s)


@ticks.command("handover")
@click.option("--date", "day", required=True, metavar="YYYY-MM-DD",
              help="Trading day to archive (Beijing).")
@click.option("--keep-redis", is_flag=True, help="Archive and report, but keep the Redis keys.")
def handover_command(day: str, keep_redis: bool) -> None:
    """Archive a day's bars from Redis to stock_1min_synth, report integrity and accuracy
    against the vendor, then delete the day from Redis."""
    from .handover import accuracy_markdown, handover

    try:
        parsed = datetime.strptime(day, "%Y-%m-%d").date()
    except ValueError as exc:
        raise click.BadParameter(f"{day!r}: expected YYYY-MM-DD", param_hint="--date") from exc
    resources = store_resources()
    client = resources["redis"].client()
    keys = LiveKeys(resources["redis"].key_prefix)
    report = handover(resources["postgres"], client, keys, parsed, delete=not keep_redis)
    click.echo(report.summary())
    if report.vendor_has_day:
        click.echo(accuracy_markdown(report.accuracy, limit=20))
