"""The stock domain: China A-share 1-minute bars, monthly K-lines, ticks → bars.

Table names belong to the domain, not to the generic PostgreSQL resource; so does the DDL
that creates them, which is also where their column schemas come from.
"""

from kline_assets.lib.settings import SQL_DIR

STOCK_TABLE = "stock_1min_qfq"
"""The vendors' 1-minute history (Beijing wall clock, bars labelled by their end)."""

STOCK_SYNTH_TABLE = "stock_1min_synth"
"""1-minute bars synthesised from ticks, archived by the nightly hand-over from Redis; never
mixed into the vendors' history."""

SOURCE_SQL = SQL_DIR / "postgres" / "source.sql"
"""Creates the source tables, stock_1min_qfq among them."""

SYNTH_SQL = SQL_DIR / "postgres" / "stock_1min_synth.sql"
"""Creates stock_1min_synth (made a hypertable by the hand-over where TimescaleDB is)."""
