"""`kline serve`: the read API and its page on uvicorn."""

from __future__ import annotations

import click

from kline_assets.api import DEFAULT_CACHE_MIB, DEFAULT_CACHE_PAGES, DEFAULT_HOLD_S
from kline_assets.api.serving import DEFAULT_MAX_ENGINE_OPENS


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--hold-s", default=DEFAULT_HOLD_S, show_default=True, type=click.FloatRange(0),
              help="embedded ClickHouse: keep the engine open this long after a request "
                   "(0 = open per request); a Dagster run waiting for it goes first")
@click.option("--cache-pages", default=DEFAULT_CACHE_PAGES, show_default=True,
              type=click.IntRange(0),
              help="pages kept while their data cannot have changed (0 = none)")
@click.option("--cache-ttl-s", default=0.0, show_default=True, type=click.FloatRange(0),
              help="ClickHouse server: keep pages, checking for new parts at most this often "
                   "(0 = read every request)")
@click.option("--cache-mib", default=DEFAULT_CACHE_MIB, show_default=True,
              type=click.IntRange(0),
              help="memory for features_wide month slices, valid as kept pages are; past it "
                   "the least recently used month goes, its pages read from ClickHouse "
                   "until it is read again (0 = none)")
@click.option("--max-engine-opens", default=DEFAULT_MAX_ENGINE_OPENS, show_default=True,
              type=click.IntRange(0),
              help="embedded ClickHouse: replace the worker process (the new one serving "
                   "first) after it opened the engine this often; chdb leaves threads behind "
                   "each open (0 = never)")
def serve(host: str, port: int, hold_s: float, cache_pages: int, cache_ttl_s: float,
          max_engine_opens: int, cache_mib: int) -> None:
    """Serve the read API (/api/…, /healthz, OpenAPI at /docs) and the features page (/)."""
    from kline_assets.api.serving import serve as run_supervised

    click.echo(f"kline read API on http://{host}:{port}/ (OpenAPI: /docs)")
    run_supervised(host, port, hold_s=hold_s, cache_pages=cache_pages, cache_ttl_s=cache_ttl_s,
                   max_engine_opens=max_engine_opens, cache_mib=cache_mib)
