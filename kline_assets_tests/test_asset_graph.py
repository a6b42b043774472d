"""A snapshot of the asset graph — keys, groups, partitions, dependencies, checks, jobs — so an
unintended change to what users see in the Dagster UI shows up in review.

After an intended change: KLINE_UPDATE_SNAPSHOTS=1 pytest kline_assets_tests/test_asset_graph.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from kline_assets.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def describe_partitions(partitions_def) -> str | None:
    if partitions_def is None:
        return None
    return f"{type(partitions_def).__name__}: {partitions_def}"


def graph_snapshot() -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "partitions": describe_partitions(node.partitions_def),
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "checks": sorted(c.name for c in node.check_keys),
            "owners": sorted(node.owners),
        }
    return {
        "assets": assets,
        "jobs": sorted(j.name for j in defs.resolve_all_job_defs()
                       if not j.name.startswith("__")),
        "sensors": sorted(s.name for s in defs.sensors or []),
        "schedules": sorted(s.name for s in defs.schedules or []),
    }


def test_asset_graph_matches_the_snapshot():
    current = graph_snapshot()
    if os.environ.get("KLINE_UPDATE_SNAPSHOTS") or not SNAPSHOT.exists():
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())
