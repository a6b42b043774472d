-- 1-minute bars synthesised from the day's ticks, archived from Redis by the nightly
-- hand-over (kline_assets.stocks.ticks.handover). Same bar columns as stock_1min_qfq; the
-- vendors' history never receives these rows. Made a hypertable on `time` when TimescaleDB
-- is installed (resources/postgres_io.ensure_hypertable). Idempotent.
CREATE TABLE IF NOT EXISTS stock_1min_synth (
    time        timestamp NOT NULL,   -- bar end, Beijing wall clock (no time zone)
    code        text NOT NULL,
    open        double precision,
    high        double precision,
    low         double precision,
    close       double precision,
    volume      double precision,     -- shares
    amount      double precision,     -- CNY
    archived_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS stock_1min_synth_code_time_idx ON stock_1min_synth (code, time);
CREATE INDEX IF NOT EXISTS stock_1min_synth_time_idx ON stock_1min_synth (time);
