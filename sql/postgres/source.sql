-- Source schema (PostgreSQL). Idempotent: safe to run on every start.
-- Scrapers outside this project write purchasing_shop_price_record; kline_assets only reads it.

CREATE TABLE IF NOT EXISTS iphone (
    id   int PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE IF NOT EXISTS shop (
    id   int PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE IF NOT EXISTS purchasing_shop_price_record (
    id            bigserial PRIMARY KEY,
    shop_id       int NOT NULL,
    iphone_id     int NOT NULL,
    price_new     int,
    price_grade_a int NULL,
    price_grade_b int NULL,
    recorded_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS purchasing_shop_price_record_recorded_at_idx
    ON purchasing_shop_price_record (recorded_at);

CREATE TABLE IF NOT EXISTS cohort (
    id   int PRIMARY KEY,
    slug text UNIQUE NOT NULL,
    name text NOT NULL
);

CREATE TABLE IF NOT EXISTS cohort_member (
    cohort_id int NOT NULL,
    iphone_id int NOT NULL,
    weight    double precision DEFAULT 1,
    PRIMARY KEY (cohort_id, iphone_id)
);

-- 1-minute A-share bars, forward-adjusted (qfq). time = Beijing wall clock, no time zone.
CREATE TABLE IF NOT EXISTS stock_1min_qfq (
    time   timestamp NOT NULL,
    code   text NOT NULL,
    name   text,
    open   double precision,
    high   double precision,
    low    double precision,
    close  double precision,
    volume double precision,
    amount double precision
);
CREATE UNIQUE INDEX IF NOT EXISTS stock_1min_qfq_code_time_idx ON stock_1min_qfq (code, time);
CREATE INDEX IF NOT EXISTS stock_1min_qfq_time_idx ON stock_1min_qfq (time);
