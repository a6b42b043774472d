"""`kline demo`: the click command the root `kline` group mounts."""

from __future__ import annotations

import click

from kline_assets.lib.errors import KlineError

_DEFAULTS = {"seed": 7, "start": "2025-10", "months": 2, "shops": 24, "iphones": 40,
             "stock_months": 2}


@click.command("demo")
@click.option("--seed", default=_DEFAULTS["seed"], show_default=True,
              help="Random seed: the same seed gives the same rows.")
@click.option("--start", default=_DEFAULTS["start"], show_default=True, metavar="YYYY-MM",
              help="First month of price records and stock bars; a price partition month.")
@click.option("--months", default=_DEFAULTS["months"], show_default=True,
              help="Months of price records (≥ 1), each materialized as a partition.")
@click.option("--shops", default=_DEFAULTS["shops"], show_default=True,
              help="Number of purchase shops (1–998).")
@click.option("--iphones", default=_DEFAULTS["iphones"], show_default=True,
              help="Number of iPhone models (1–40).")
@click.option("--stock-months", default=_DEFAULTS["stock_months"], show_default=True,
              help="Months of 1-minute stock bars from --start (0: none); XSHG sessions.")
def demo(seed: int, start: str, months: int, shops: int, iphones: int,
         stock_months: int) -> None:
    """Load realistic synthetic data and materialize every asset for run `demo`.

    Only rows the demo created are replaced; arguments are checked before anything changes.
    """
    from kline_assets.demo.catalog import DemoConfig
    from kline_assets.demo.run import run_demo, validate

    try:
        cfg = DemoConfig(seed=seed, start=start, months=months, n_shops=shops,
                         n_iphones=iphones, stock_months=stock_months)
    except ValueError as exc:  # the configuration's own rules: bad arguments
        raise KlineError(str(exc)) from exc
    validate(cfg)
    run_demo(cfg, echo=click.echo)
