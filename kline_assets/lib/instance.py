"""The Dagster instance the `kline` CLI and the demo use: DAGSTER_HOME, defaulting to
<repo>/.kline/dagster (sqlite storage), created with telemetry off when it is new."""

from __future__ import annotations

import os

from dagster import DagsterInstance

from kline_assets.lib.settings import load_settings

_DEFAULT_YAML = (
    "telemetry:\n  enabled: false\n"
    "run_monitoring:\n  enabled: true\n  start_timeout_seconds: 180\n"
    "  poll_interval_seconds: 60\n"
)


def ensure_home() -> str:
    """DAGSTER_HOME (set to the default when unset), created with the local instance yaml
    when new; `make` calls this too, so the CLI and `dagster dev` share one configuration."""
    os.environ.setdefault("DAGSTER_HOME", str(load_settings().dagster_home))
    home = os.environ["DAGSTER_HOME"]
    os.makedirs(home, exist_ok=True)
    config = os.path.join(home, "dagster.yaml")
    if not os.path.exists(config):
        with open(config, "w") as fh:
            fh.write(_DEFAULT_YAML)
    return home


def get_instance() -> DagsterInstance:
    ensure_home()
    return DagsterInstance.get()
