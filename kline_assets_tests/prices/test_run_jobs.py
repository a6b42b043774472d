"""drop_run, promote_run and compare_runs as Dagster jobs (what the launchpad launches): typed
config, the same effect as `kline runs …`, and what they did in the run's metadata."""

from __future__ import annotations

import pytest
from dagster import AssetKey, DagsterInstance

from kline_assets.definitions import defs
from kline_assets.prices.partitions import create_run, registered_run_ids
from kline_assets.prices.pipeline import failure_message
from kline_assets.prices.run_jobs import compare_runs_job, drop_run_job, promote_run_job
from kline_assets.prices.runs import backup_name, run_partitions
from kline_assets_tests.support.runs import load_runs


def _launch(job, clickhouse, instance: DagsterInstance, config: dict, op: str):
    result = job.execute_in_process(
        run_config={"ops": {op: {"config": config}}}, instance=instance,
        resources={"clickhouse": clickhouse}, raise_on_error=False)
    return result


def _metadata(result, op: str) -> dict:
    outputs = [e for e in result.events_for_node(op) if e.event_type_value == "STEP_OUTPUT"]
    return outputs[0].step_output_data.metadata


def test_the_run_jobs_are_in_the_definitions_with_typed_config():
    for name in ("drop_run", "promote_run", "compare_runs"):
        job = defs.resolve_job_def(name)
        fields = job.run_config_schema.config_type.fields["ops"].config_type.fields
        assert len(fields) == 1
    op_fields = defs.resolve_job_def("promote_run").run_config_schema.config_type.fields[
        "ops"].config_type.fields["promote_run_op"].config_type.fields["config"].config_type.fields
    assert {"source", "target", "backup", "keep_backups"} <= set(op_fields)


def test_compare_job_reports_a_markdown_table(clickhouse, instance):
    load_runs(clickhouse)
    result = _launch(compare_runs_job, clickhouse, instance,
                     {"base": "live", "target": "backfill_v3"}, "compare_runs_op")
    assert result.success
    report = _metadata(result, "compare_runs_op")["report"].value
    assert "| price_aligned" in report and "Differences" in report
    assert "iphone:10" in report
    same = _launch(compare_runs_job, clickhouse, instance,
                   {"base": "live", "target": "live"}, "compare_runs_op")
    assert "No differences." in _metadata(same, "compare_runs_op")["report"].value


@pytest.mark.slow
def test_promote_job_backs_up_promotes_and_records_materializations(clickhouse, instance):
    load_runs(clickhouse)
    before = run_partitions(clickhouse, "live")
    result = _launch(promote_run_job, clickhouse, instance,
                     {"source": "backfill_v3", "keep_backups": 1}, "promote_run_op")
    assert result.success
    meta = _metadata(result, "promote_run_op")
    backup = backup_name()
    assert meta["backup"].value == backup and meta["rows_promoted/cross_shop_agg"].value > 0
    assert run_partitions(clickhouse, backup) == {
        t: [(backup, *v[1:]) for v in parts] for t, parts in before.items()}
    assert {backup, "live"} <= set(registered_run_ids(instance))
    event = instance.get_latest_materialization_event(AssetKey("cross_shop_agg"))
    assert event.run_id == result.run_id
    assert event.asset_materialization.metadata["promoted_from"].value == "backfill_v3"

    again = _launch(promote_run_job, clickhouse, instance,
                    {"source": "backfill_v2", "keep_backups": 1}, "promote_run_op")
    meta = _metadata(again, "promote_run_op")
    assert meta["backup"].value == f"{backup}_2" and meta["backups_pruned"].value == backup
    assert run_partitions(clickhouse, backup)["price_aligned"] == []


def test_drop_job_drops_and_unregisters_even_a_malformed_id(clickhouse, instance):
    load_runs(clickhouse)
    create_run(instance, "backfill_v2")
    result = _launch(drop_run_job, clickhouse, instance, {"run_id": "backfill_v2"},
                     "drop_run_op")
    assert result.success
    assert _metadata(result, "drop_run_op")["partitions_dropped/price_aligned"].value == 1
    assert run_partitions(clickhouse, "backfill_v2")["price_aligned"] == []
    assert "backfill_v2" not in registered_run_ids(instance)

    instance.add_dynamic_partitions("run_id", ["Bad-Name"])  # as the UI's "Add a partition"
    result = _launch(drop_run_job, clickhouse, instance, {"run_id": "Bad-Name"}, "drop_run_op")
    assert result.success and "Bad-Name" not in registered_run_ids(instance)

    refused = _launch(drop_run_job, clickhouse, instance, {"run_id": "live"}, "drop_run_op")
    assert not refused.success
    assert "refusing to drop 'live'" in failure_message(refused)


@pytest.mark.parametrize("config", [{"base": "live"}, {"base": "live", "target": 3}])
def test_compare_job_config_is_typed(config):
    from dagster._core.errors import DagsterInvalidConfigError

    with pytest.raises(DagsterInvalidConfigError):
        compare_runs_job.execute_in_process(run_config={"ops": {"compare_runs_op": {
            "config": config}}}, instance=DagsterInstance.ephemeral(),
            resources={"clickhouse": None})
