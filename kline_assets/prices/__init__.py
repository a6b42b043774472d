"""The price domain: second-hand iPhone purchase prices, run_id × month partitioned."""
