"""Stock domain: 1-minute A-share bars (stock_1min) → monthly K-lines (stock_monthly_kline).

partitions  month partitions (Asia/Shanghai, 2000-01 → current month) and their SQL windows
landing     landing CSV/Parquet files → validated, deduplicated bars → COPY, one month at a time
monthly     TimescaleDB continuous aggregate or plain table; detection, DDL, refresh
assets      the two assets; checks: the seed's validation queries; plots: candlestick PNG
jobs / schedules / cli / definitions
"""
