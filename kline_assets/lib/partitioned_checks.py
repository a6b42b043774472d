"""Partitioned asset checks in runs over a range of partitions.

Dagster records a check result under a partition only when the run has a single partition key;
a backfill run over a range (a BackfillPolicy, even a range of one) records it with no
partition, so the UI shows "Partition —" and leaves the planned partitions "Skipped". A check
of a ranged run therefore evaluates each partition of the range and records one evaluation
per partition; a single-partition run yields Dagster's usual result. (No `from __future__
import annotations`: Dagster reads the check's `context` annotation.) `partitioned_check`
builds such a check from a function of one partition key: a subsettable multi_asset_check of
one spec, whose output is optional (an @asset_check's is required, so it would have to yield
a result without a partition as well). Over a range, only the partitions that hold a
materialization of the asset are evaluated: a month the run found without data has nothing to
check, and a check that "passed" on it would be a green mark on an empty month.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSpec,
    AssetKey,
    AssetsDefinition,
    PartitionsDefinition,
    multi_asset_check,
)


def per_partition(
    context: AssetCheckExecutionContext, evaluate: Callable[[str | None], AssetCheckResult],
    check: AssetCheckKey | None = None,
) -> Iterator[AssetCheckResult | AssetCheckEvaluation]:
    """`evaluate(partition_key)` for the run's partition, or for each key of its range; in a
    run without partitions, `evaluate(None)` (the whole asset), recorded without one. `check`
    names the check of an op that runs several (default: the op's only one)."""
    op = context.op_execution_context
    if op.has_partition_key:
        yield evaluate(op.partition_key)
        return
    if check is None:
        (spec,) = context.check_specs
    else:
        spec = next(s for s in context.check_specs if s.key == check)
    if not op.has_partition_key_range:
        yield as_evaluation(evaluate(None), None, spec.key, spec.blocking)
        return
    materialized = context.instance.get_materialized_partitions(spec.asset_key)
    for key in op.partition_keys:
        if key in materialized:
            yield as_evaluation(evaluate(key), key, spec.key, spec.blocking)
        else:
            context.log.info(f"{spec.key.to_user_string()}: {key} holds no materialization of "
                             f"{spec.asset_key.to_user_string()}, so there is nothing to check")


def as_evaluation(result: AssetCheckResult, partition: str | None,
                  check_key: AssetCheckKey | None = None,
                  blocking: bool = False) -> AssetCheckEvaluation:
    """A check result recorded for `partition` (None: no partition). `check_key` names the
    check when the result does not (a single @asset_check leaves both to Dagster); a failed
    blocking evaluation of ERROR severity still fails the step."""
    return AssetCheckEvaluation(
        asset_key=AssetKey.from_coercible(result.asset_key or check_key.asset_key),
        check_name=result.check_name or check_key.name,
        passed=result.passed, metadata=result.metadata, severity=result.severity,
        description=result.description, partition=partition, blocking=blocking,
    )


@dataclass(frozen=True)
class PartitionEvaluator:
    """A partitioned check as a plain function of one partition key and its resources, for the
    jobs that write partitions without materializing the asset through Dagster (the live
    refresh): they evaluate the checks of what they wrote themselves."""

    key: AssetCheckKey
    evaluate: Callable[..., AssetCheckResult]
    resources: frozenset[str]
    blocking: bool

    def evaluation(self, partition: str, available: dict[str, object]) -> AssetCheckEvaluation:
        given = {name: available[name] for name in self.resources}
        return as_evaluation(self.evaluate(partition, **given), partition, self.key,
                             self.blocking)


_EVALUATORS: dict[AssetCheckKey, PartitionEvaluator] = {}


def evaluators_of(asset_key: AssetKey, module: ModuleType) -> list[PartitionEvaluator]:
    """The partitioned checks on `asset_key` that `module` defines with `partitioned_check`
    (passing the module makes sure it was imported, so its checks are known)."""
    return [e for k, e in _EVALUATORS.items()
            if k.asset_key == asset_key and e.evaluate.__module__ == module.__name__]


def partitioned_check(
    *, asset: AssetsDefinition, partitions_def: PartitionsDefinition, description: str,
    resources: set[str], blocking: bool = False,
) -> Callable[[Callable[..., AssetCheckResult]], AssetChecksDefinition]:
    """A check named after `evaluate(partition_key, **resources)`, run per partition."""

    def build(evaluate: Callable[..., AssetCheckResult]) -> AssetChecksDefinition:
        spec = AssetCheckSpec(evaluate.__name__, asset=asset, partitions_def=partitions_def,
                              description=description, blocking=blocking)

        @multi_asset_check(specs=[spec], name=evaluate.__name__, description=description,
                           can_subset=True,
                           required_resource_keys=resources)
        def check(context: AssetCheckExecutionContext):
            given = {key: getattr(context.resources, key) for key in resources}
            yield from per_partition(context, lambda key: evaluate(key, **given))

        _EVALUATORS[spec.key] = PartitionEvaluator(spec.key, evaluate, frozenset(resources),
                                                   blocking)
        return check

    return build
