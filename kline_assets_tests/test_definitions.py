"""The code location loads and describes itself: what a user sees in the Dagster UI."""

import json

from click.testing import CliRunner
from dagster import AssetKey, MultiPartitionsDefinition

from kline_assets.cli import cli
from kline_assets.definitions import defs


def test_price_graph_is_partitioned_and_documented():
    graph = defs.resolve_asset_graph()
    aligned = graph.get(AssetKey("price_aligned"))
    assert AssetKey("raw_price_records") in aligned.parent_keys
    assert isinstance(aligned.partitions_def, MultiPartitionsDefinition)
    assert sorted(d.name for d in aligned.partitions_def.partitions_defs) == ["month", "run_id"]
    assert aligned.description and aligned.owners and aligned.group_name == "prices"
    schema = aligned.metadata["dagster/column_schema"]
    assert [c.name for c in schema.columns][:3] == ["run_id", "bucket", "shop_id"]


def test_every_asset_has_description_owner_and_group():
    for node in defs.resolve_asset_graph().asset_nodes:
        if node.is_external:
            continue
        assert node.description, node.key
        assert node.owners, node.key
        assert node.group_name != "default", node.key


def test_jobs_resolve():
    assert defs.resolve_job_def("price_assets")


def test_cli_registers_run_ids(tmp_path, monkeypatch, clickhouse_dsn):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    # `runs list` reads ClickHouse too: a database that does not exist yet (before `kline init`)
    monkeypatch.setenv("KLINE_CLICKHOUSE_DSN", clickhouse_dsn)
    monkeypatch.setenv("KLINE_CLICKHOUSE_DATABASE", "never_initialised")
    runner = CliRunner()
    assert "registered" in runner.invoke(cli, ["runs", "create", "backfill_20251101_v3"]).output
    assert "already" in runner.invoke(cli, ["runs", "create", "backfill_20251101_v3"]).output
    listed = runner.invoke(cli, ["runs", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(r["run_id"], r["registered"], r["months"]) for r in json.loads(listed.output)] == [
        ("backfill_20251101_v3", True, [])]
    bad = runner.invoke(cli, ["runs", "create", "Bad|Id"])
    assert bad.exit_code == 2 and "malformed run id" in bad.stderr


def test_loading_the_code_location_does_not_import_torch():
    """Every Dagster step process loads the definitions; torch costs seconds to import and
    only the aggregation assets need it, so they import it when they run."""
    import subprocess
    import sys

    code = "import sys, kline_assets.definitions; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
