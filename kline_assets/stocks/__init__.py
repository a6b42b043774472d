"""The stock domain: China A-share 1-minute bars, monthly K-lines, ticks → bars.

Table names belong to the domain, not to the generic PostgreSQL resource.
"""

STOCK_TABLE = "stock_1min_qfq"
"""The vendors' 1-minute history (Beijing wall clock, bars labelled by their end)."""

STOCK_SYNTH_TABLE = "stock_1min_synth"
"""1-minute bars synthesised from ticks, archived by the nightly hand-over from Redis; never
mixed into the vendors' history."""
