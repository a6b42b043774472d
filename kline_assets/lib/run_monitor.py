"""Runs whose worker process died are marked failed, not left STARTED forever.

Dagster's run monitoring only checks a run worker's health where the run launcher can
(Docker, Kubernetes); the default launcher used by `dagster dev`, the docker-compose code
server and `dagster asset materialize` cannot, so a run killed with -9 (or by the OOM killer)
stays STARTED and its partitions look in progress. Every run worker and executor logs an
engine event with its pid; this sensor, evaluated in the code server beside the workers it
launched, fails a STARTED run once every pid it logged is gone and the run has been quiet
for a while (the quiet period keeps it from judging a run that another machine executes).
Where the run launcher can check its workers (the docker-compose deployment's
DockerRunLauncher, Kubernetes), the sensor stands aside: those runs' pids live in other
containers, and Dagster's run monitoring asks the launcher instead.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from kline_assets.lib.processes import pid_alive

QUIET_S = 300.0


@dataclass(frozen=True)
class DeadRun:
    run_id: str
    pids: tuple[int, ...]
    quiet_s: float


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def _started_at(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), where /proc tells; None elsewhere."""
    boot = _boot_time()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if boot is None:
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def is_running(pid: int, since: float) -> bool:
    """Whether the process that logged `pid` at `since` still runs (a reused pid does not)."""
    if not pid_alive(pid):
        return False
    started = _started_at(pid)
    return started is None or started <= since + 1.0


def dead_runs(instance: DagsterInstance, quiet_s: float = QUIET_S,
              now: float | None = None) -> list[DeadRun]:
    """STARTED runs whose logged worker pids are all gone and that logged nothing for
    `quiet_s` seconds."""
    clock = time.time() if now is None else now
    found = []
    for record in instance.get_run_records(
            filters=RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        run_id = record.dagster_run.run_id
        logs = instance.all_logs(run_id)
        if not logs:
            continue
        quiet = clock - max(entry.timestamp for entry in logs)
        workers = {}
        for entry in logs:
            event = entry.dagster_event
            if event is None or event.event_type != DagsterEventType.ENGINE_EVENT:
                continue
            pid = event.engine_event_data.metadata.get("pid")
            if pid is not None and str(pid.value).isdigit():
                workers.setdefault(int(pid.value), entry.timestamp)
        if not workers or quiet < quiet_s:
            continue
        if not any(is_running(pid, since) for pid, since in workers.items()):
            found.append(DeadRun(run_id, tuple(sorted(workers)), quiet))
    return found


def fail_dead_runs(instance: DagsterInstance, quiet_s: float = QUIET_S,
                   now: float | None = None) -> list[DeadRun]:
    dead = dead_runs(instance, quiet_s, now)
    for run in dead:
        dagster_run = instance.get_run_by_id(run.run_id)
        if dagster_run is not None and dagster_run.status == DagsterRunStatus.STARTED:
            instance.report_run_failed(
                dagster_run,
                f"run worker gone (pid {', '.join(map(str, run.pids))} no longer running, "
                f"no event for {run.quiet_s:.0f}s): the process was killed or crashed; "
                "re-materialize its partitions",
            )
    return dead


@sensor(minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
        description="Marks STARTED runs whose worker process died as failed (kill -9, OOM).")
def dead_run_workers_sensor(context: SensorEvaluationContext) -> SkipReason:
    launcher = context.instance.run_launcher
    if launcher.supports_check_run_worker_health:
        # Runs live in containers of their own (DockerRunLauncher, K8sRunLauncher): their pids
        # are not this process's to see, and the daemon's run monitoring asks the launcher.
        return SkipReason(f"{type(launcher).__name__} checks its run workers itself "
                          "(run monitoring in dagster.yaml)")
    dead = fail_dead_runs(context.instance)
    if not dead:
        return SkipReason("every STARTED run has a live worker")
    return SkipReason("marked failed: " + ", ".join(run.run_id for run in dead))
