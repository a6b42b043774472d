"""Stock domain: 1-minute A-share bars (stock_1min) → monthly K-lines (stock_monthly_kline).

sessions    the XSHG calendar and session hours everything else asks
partitions  month partitions (Asia/Shanghai, 2000-01 → current month) and their SQL windows
landing/    landing CSV/Parquet files → validated, deduplicated bars, streamed one month at a time
monthly     TimescaleDB continuous aggregate or plain table; detection, DDL, refresh
assets      the two assets (stock_1min writes through resources/postgres_io.py)
checks      validation queries on stock_monthly_kline, integrity checks on stock_1min
plots       candlestick PNG of a code's monthly K-lines
jobs / schedules / cli / definitions
"""
