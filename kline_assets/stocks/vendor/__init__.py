"""Vendor minute bars through Redis → the history store, exactly once.

The users' second machine pushes the vendor's 1/5/15/30/60-minute bars into the stream
`kline:vendor:bars` during the day; `kline bars ingest` validates them with the landing rules,
writes each batch in one PostgreSQL transaction together with the group's committed stream
position, and only then acknowledges them. Never mixed with the bars synthesised from ticks.

keys      key names under RedisResource.key_prefix
codec     stream entries ↔ columns (a batch at once, from the reply as Redis sends it)
screen    the landing rules per entry, with a rejection reason
store     one transaction per batch: binary COPY into staging, upsert, position, counters
ingest    the consumer-group loop (ordered batches, claims, dead letters, status, prefetch)
publish   replay a CSV/Parquet of vendor bars into the stream
events    observations of stock_1min per month touched, for the UI and the automation
status    what the transfer page shows (GET /api/vendor/status)
dagster   the refresh sensor, the nightly stream trim, the vendor-consistency check
cli       `kline bars publish-vendor` and `kline bars ingest`
"""

VENDOR_TABLE = "stock_bars_vendor"
"""The vendor's 5/15/30/60-minute bars (period in the key); 1-minute bars go to
stock_1min_qfq."""
INGEST_TABLE = "stock_vendor_ingest"
CORRECTIONS_TABLE = "stock_vendor_corrections"
