"""`kline pipeline`: compute a run id over a range of months, through Dagster.

Every (month, step) is one Dagster run of the `price_assets` job on the instance the UI reads,
selecting that step's asset, with the run's settings in its run config (`resources:
price_run: config: …`), so the UI lists the runs and materializations exactly as if they had
been launched from the launchpad. Months go in order and, within a month, the steps in
dependency order: a month's features read the previous month's cross_shop_agg as warm-up.
One run per step also gives the progress and the seconds per step, and lets Ctrl-C stop
between two writes: every step replaces its ClickHouse partition atomically, so an
interrupted step leaves the previous rows and the steps reported done are exactly what was
written.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dagster import AssetKey, DagsterEventType, DagsterInstance, Definitions

from kline_assets.lib.errors import KlineError
from kline_assets.lib.months import add_months, month_key, month_label, parse_month
from kline_assets.prices.partitions import (
    create_run,
    month_partitions,
    price_partition_key,
    validate_run_id,
)
from kline_assets.prices.run_config import PriceRun

# Step name → the asset it materializes, in dependency order.
STEPS = {"align": "price_aligned", "aggregate": "cross_shop_agg",
         "features": "features_wide", "cohorts": "cohorts"}
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
PIPELINE_TAG = "kline/pipeline"
STEP_TAG = "kline/step"


def parse_steps(text: str | Sequence[str] | None) -> list[str]:
    """'align,aggregate' → the steps in dependency order; None/empty → all of them."""
    if not text:
        return list(STEPS)
    names = [s.strip() for s in (text.split(",") if isinstance(text, str) else text)]
    unknown = [s for s in names if s not in STEPS]
    if unknown or not [s for s in names if s]:
        raise KlineError(f"unknown step(s) {unknown or names}; choose from {', '.join(STEPS)}")
    return [s for s in STEPS if s in names]


def _month_of(text: str, option: str) -> datetime:
    """'YYYY-MM' or 'YYYY-MM-DD' → its month start; the option's name in the error."""
    value = str(text).strip()
    try:
        if len(value) == 10:
            day = datetime.strptime(value, "%Y-%m-%d")
            return datetime(day.year, day.month, 1)
        return parse_month(value)
    except ValueError as exc:
        raise KlineError(f"{option} {text!r}: expected YYYY-MM or YYYY-MM-DD") from exc


def month_range(first: str, last: str) -> list[str]:
    """Month keys 'YYYY-MM-01' from the month of `first` through the month of `last`
    (inclusive), all of them price partitions."""
    start, end = _month_of(first, "--from"), _month_of(last, "--to")
    if start > end:
        raise KlineError(f"--from is after --to ({month_label(start)} > {month_label(end)})")
    keys, month = [], start
    while month <= end:
        keys.append(month_key(month))
        month = add_months(month, 1)
    known = month_partitions.get_partition_keys()
    outside = [k[:7] for k in keys if k not in set(known)]
    if outside:
        raise KlineError(
            f"months {', '.join(outside)} are not price partitions "
            f"({known[0][:7]}..{known[-1][:7]}); choose --from/--to within")
    return keys


@dataclass(frozen=True)
class PipelinePlan:
    """What to compute: a run id, months in order, steps in order, the run's settings."""

    run_id: str
    months: list[str]
    steps: list[str]
    settings: PriceRun = field(default_factory=PriceRun)

    def __post_init__(self) -> None:
        validate_run_id(self.run_id)

    @property
    def work(self) -> list[tuple[str, str]]:
        return [(m, s) for m in self.months for s in self.steps]


@dataclass
class StepDone:
    month: str
    step: str
    seconds: float
    dagster_run_id: str
    success: bool
    error: str = ""


@dataclass
class PipelineOutcome:
    plan: PipelinePlan
    registered: bool
    done: list[StepDone] = field(default_factory=list)
    interrupted: bool = False

    @property
    def failed(self) -> StepDone | None:
        return next((d for d in self.done if not d.success), None)

    @property
    def written(self) -> list[StepDone]:
        return [d for d in self.done if d.success]

    def seconds_per_step(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for d in self.written:
            out[d.step] = out.get(d.step, 0.0) + d.seconds
        return out


Progress = Callable[[int, int, str, str, "StepDone | None"], None]


def failure_message(result: Any) -> str:
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            # The project's errors reach the user as their message, not a traceback.
            while error.cause is not None and error.cls_name.startswith("Dagster"):
                error = error.cause
            return error.message.strip()
    return "the run failed; see it in the Dagster UI"


def was_interrupted(result: Any, error: str) -> bool:
    """A Ctrl-C inside a step fails the step with KeyboardInterrupt; one that lands while the
    run sets up its resources fails the run itself ("Execution was interrupted")."""
    if "KeyboardInterrupt" in error or "interrupt" in error.lower():
        return True
    return any(event.event_type == DagsterEventType.RUN_FAILURE
               and "interrupted" in (event.message or "").lower()
               for event in result.all_events)


def price_job(resources: dict[str, Any]):
    """The `price_assets` job on these resources (the stores a CLI or test points at), with
    the price checks: selecting a step's asset brings its checks along, so every partition the
    pipeline materializes is checked in the same run, as a materialization from the UI is."""
    from kline_assets.prices.definitions import defs as price_defs

    return Definitions(assets=list(price_defs.assets or []),
                       asset_checks=list(price_defs.asset_checks or []),
                       jobs=list(price_defs.jobs or []),
                       resources=resources).resolve_job_def("price_assets")


def run_pipeline(instance: DagsterInstance, resources: dict[str, Any], plan: PipelinePlan,
                 progress: Progress | None = None) -> PipelineOutcome:
    """Register the run id if new, then one Dagster run per (month, step) in order; stops at
    the first failure or at Ctrl-C (KeyboardInterrupt), reporting what was done."""
    outcome = PipelineOutcome(plan, registered=create_run(instance, plan.run_id))
    job = price_job(resources)
    pipeline_id = uuid.uuid4().hex[:12]
    run_config = {**plan.settings.run_config(), **QUIET_LOGS}
    work = plan.work
    for i, (month, step) in enumerate(work, start=1):
        if progress:
            progress(i, len(work), month, step, None)
        started = time.perf_counter()
        try:
            result = job.execute_in_process(
                run_config=run_config, instance=instance,
                partition_key=price_partition_key(plan.run_id, month),
                asset_selection=[AssetKey(STEPS[step])], raise_on_error=False,
                tags={PIPELINE_TAG: pipeline_id, STEP_TAG: step})
        except KeyboardInterrupt:
            outcome.interrupted = True
            return outcome
        done = StepDone(month, step, time.perf_counter() - started, result.run_id,
                        result.success, "" if result.success else failure_message(result))
        outcome.done.append(done)
        if progress:
            progress(i, len(work), month, step, done)
        if not result.success:
            outcome.interrupted = was_interrupted(result, done.error)
            break
    return outcome
