"""Today's bars: ticks from a Redis stream folded into 1-minute bars kept in Redis, and the
nightly hand-over that archives them to `stock_1min_synth` and holds them against the vendor.

publish (a tick file → stream), consume (stream → bars, crash-safe), live (reading the bars
back), handover (archive, integrity, accuracy, then delete), assets (the Dagster job and its
02:00 schedule), cli (`kline ticks …`). Where everything lives in Redis is in `keys`.
"""
