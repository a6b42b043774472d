-- Vendor bars arriving through the Redis stream (kline_assets.stocks.vendor). Idempotent:
-- `kline init` and every `kline bars ingest` run it. 1-minute bars go to stock_1min_qfq
-- (source.sql); 5/15/30/60-minute bars to stock_bars_vendor, period in the key. Both are made
-- hypertables on `time` when TimescaleDB is installed.
CREATE TABLE IF NOT EXISTS stock_bars_vendor (
    time   timestamp NOT NULL,       -- bar end, Beijing wall clock (no time zone)
    code   text NOT NULL,
    period smallint NOT NULL,        -- minutes: 5, 15, 30, 60
    open   double precision,
    high   double precision,
    low    double precision,
    close  double precision,
    volume double precision,         -- shares
    amount double precision,         -- CNY
    PRIMARY KEY (code, period, time)
);
CREATE INDEX IF NOT EXISTS stock_bars_vendor_time_idx ON stock_bars_vendor (time);

-- The committed position of each consumer group and its exactly-once counters, written in
-- the same transaction as the bars: an entry at or before (last_ms, last_seq) is in the
-- tables already, so a redelivery after a kill between COMMIT and XACK adds nothing.
CREATE TABLE IF NOT EXISTS stock_vendor_ingest (
    stream      text NOT NULL,
    grp         text NOT NULL,
    last_ms     bigint NOT NULL DEFAULT 0,
    last_seq    bigint NOT NULL DEFAULT 0,
    entries     bigint NOT NULL DEFAULT 0,   -- entries committed (bars and rejections)
    inserted    bigint NOT NULL DEFAULT 0,   -- new bars
    duplicates  bigint NOT NULL DEFAULT 0,   -- identical re-sends
    corrections bigint NOT NULL DEFAULT 0,   -- re-sends with other values (the later won)
    rejected    jsonb NOT NULL DEFAULT '{}', -- reason -> entries dead-lettered
    last_frame  timestamp,                   -- the newest bar end committed
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, grp)
);

-- Every correction: the bar's values before and after, and the entry that brought it.
CREATE TABLE IF NOT EXISTS stock_vendor_corrections (
    stream       text NOT NULL,
    grp          text NOT NULL,
    entry_id     text NOT NULL,
    code         text NOT NULL,
    period       smallint NOT NULL,
    time         timestamp NOT NULL,
    old_open double precision, old_high double precision, old_low double precision,
    old_close double precision, old_volume double precision, old_amount double precision,
    open double precision, high double precision, low double precision,
    close double precision, volume double precision, amount double precision,
    corrected_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS stock_vendor_corrections_at_idx
    ON stock_vendor_corrections (stream, grp, corrected_at DESC);
