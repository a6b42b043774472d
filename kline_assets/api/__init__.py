"""The HTTP read service (`kline serve`): JSON endpoints on the domains' read modules
(`prices.read`, `stocks.read`) in the shapes the pricing team's frontend already reads, and
pages to look at features and bars. `create_app` lives in `kline_assets.api.app` (imported
only where the service runs, so the CLI starts fast)."""

DEFAULT_HOLD_S = 2.0
"""Embedded ClickHouse: seconds the service keeps the engine open after its last request."""

DEFAULT_CACHE_PAGES = 512
"""Pages the service keeps while their data cannot have changed (a few MiB)."""

DEFAULT_CACHE_MIB = 1024
"""MiB of features_wide month slices the service keeps in memory while their data cannot have
changed (a month of 300 iPhones × the 8 columns of a bar page is ~45 MiB)."""
