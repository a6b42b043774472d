"""Code both domains share and no domain owns: settings, errors, month arithmetic, plots,
processes, partitioned checks, the run monitor, the CLI's Dagster instance and the
notices it silences — kept apart from the domains, as dagster-open-platform keeps its
shared code apart from `defs/<domain>/`."""
