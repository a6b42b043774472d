"""The scale-out deployment files agree with each other and with the code (no Docker engine, no
ClickHouse cluster here: what is checked is the configuration, not a running cluster), and
the code server's command of docker-compose.yml serves the definitions (run here, outside a
container)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from dagster import build_sensor_context, instance_for_test

from kline_assets.lib.run_monitor import dead_run_workers_sensor
from kline_assets.resources.clickhouse.features import DEPLOYMENT_RELEASE

ROOT = Path(__file__).resolve().parents[1]
CH = ROOT / "deploy" / "clickhouse"


def compose(*names: str) -> dict:
    """The compose files merged the way `docker compose -f a -f b` merges services' maps."""
    merged: dict = {"services": {}, "volumes": {}}
    for name in names:
        doc = yaml.safe_load((ROOT / name).read_text())
        for key in ("services", "volumes"):
            for service, spec in (doc.get(key) or {}).items():
                into = merged[key].setdefault(service, {}) or {}
                for field, value in (spec or {}).items():
                    if isinstance(value, dict) and isinstance(into.get(field), dict):
                        into[field] = {**into[field], **value}
                    elif isinstance(value, list) and isinstance(into.get(field), list) \
                            and field == "volumes":
                        into[field] = value  # a replica lists its mounts in full
                    else:
                        into[field] = value
                merged[key][service] = into
    return merged


def xml(name: str) -> ET.Element:
    return ET.parse(CH / name).getroot()


def test_the_cluster_overlay_has_two_replicas_and_a_keeper_on_the_official_images():
    services = compose("docker-compose.yml", "docker-compose.cluster.yml")["services"]
    assert services["clickhouse"]["image"] == f"clickhouse/clickhouse-server:{DEPLOYMENT_RELEASE}"
    assert services["clickhouse-2"]["image"] == services["clickhouse"]["image"]
    assert services["clickhouse-keeper"]["image"] == \
        f"clickhouse/clickhouse-keeper:{DEPLOYMENT_RELEASE}"
    # Every mount of the overlay names a file of deploy/clickhouse/ that exists.
    for name in ("clickhouse", "clickhouse-2", "clickhouse-keeper"):
        for mount in services[name]["volumes"]:
            source = mount.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), (name, source)


def test_remote_servers_macros_and_keeper_agree():
    services = compose("docker-compose.yml", "docker-compose.cluster.yml")["services"]
    [cluster] = list(xml("remote_servers.xml").find("remote_servers"))
    # The Dagster services address the cluster by the name remote_servers declares.
    for name in ("dagster-code", "dagster-webserver", "dagster-daemon"):
        assert services[name]["environment"]["KLINE_CLICKHOUSE_CLUSTER"] == cluster.tag
    [shard] = cluster.findall("shard")
    assert shard.findtext("internal_replication") == "true"
    hosts = [r.findtext("host") for r in shard.findall("replica")]
    assert hosts == ["clickhouse", "clickhouse-2"]
    # Each replica mounts its own macros: same shard, its own replica name.
    macros = {}
    for host in hosts:
        [mount] = [m for m in services[host]["volumes"] if "macros" in m]
        macros[host] = xml(Path(mount.split(":")[0]).name).find("macros")
        assert mount.split(":")[1] == "/etc/clickhouse-server/config.d/macros.xml"
    assert {m.findtext("shard") for m in macros.values()} == {"01"}
    assert len({m.findtext("replica") for m in macros.values()}) == 2
    assert {m.findtext("cluster") for m in macros.values()} == {cluster.tag}
    # The servers find the keeper where it listens.
    node = xml("use_keeper.xml").find("zookeeper/node")
    keeper = xml("keeper.xml").find("keeper_server")
    assert node.findtext("host") == "clickhouse-keeper"
    assert node.findtext("port") == keeper.findtext("tcp_port")
    assert keeper.find("raft_configuration/server").findtext("hostname") == "clickhouse-keeper"


def instance_yaml() -> dict:
    return yaml.safe_load((ROOT / "dagster.yaml").read_text())


def test_the_deployment_instance_resolves_the_docker_run_launcher_without_an_engine():
    from dagster_docker import DockerRunLauncher

    config = instance_yaml()
    overrides = {k: config[k] for k in ("run_launcher", "run_coordinator", "run_monitoring")}
    with instance_for_test(overrides=overrides) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, DockerRunLauncher)
        assert launcher.networks == ["kline"]
        assert "KLINE_CLICKHOUSE_DSN" in launcher.env_vars
        assert launcher.supports_check_run_worker_health
        # The pid-watching sensor steps aside: the daemon's run monitoring asks the launcher.
        skip = dead_run_workers_sensor(build_sensor_context(instance=instance))
        assert "DockerRunLauncher checks its run workers itself" in skip.skip_message
        assert instance.run_monitoring_enabled
        assert instance.run_coordinator.get_run_queue_config().tag_concurrency_limits == [
            {"key": "kline/live_writer", "limit": 1}]


def test_compose_gives_the_launcher_its_network_image_environment_and_volumes():
    services = compose("docker-compose.yml")["services"]
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    launcher = instance_yaml()["run_launcher"]["config"]
    assert base["networks"]["default"]["name"] == launcher["network"]
    # Every variable the launcher passes on is set where runs are launched (the daemon).
    daemon_env = services["dagster-daemon"]["environment"]
    assert set(launcher["env_vars"]) <= set(daemon_env), set(launcher["env_vars"]) - set(
        daemon_env)
    for mount in launcher["container_kwargs"]["volumes"]:
        volume = mount.split(":")[0]
        assert base["volumes"][volume]["name"] == volume  # the name the engine sees
        assert mount in services["dagster-code"]["volumes"]
    # The code server names its own image for the runs; webserver and daemon run it too.
    code = services["dagster-code"]
    assert code["environment"]["DAGSTER_CURRENT_IMAGE"] == code["image"]
    assert services["dagster-webserver"]["image"] == services["dagster-daemon"]["image"] \
        == code["image"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in services["dagster-daemon"]["volumes"]


def code_server_command() -> list[str]:
    return compose("docker-compose.yml")["services"]["dagster-code"]["command"]


def test_webserver_and_daemon_find_the_code_server_where_it_listens():
    command = code_server_command()
    assert command[:3] == ["dagster", "api", "grpc"]
    workspace_file = "deploy/dagster/workspace.yaml"
    services = compose("docker-compose.yml")["services"]
    for name in ("dagster-webserver", "dagster-daemon"):
        assert services[name]["command"][-2:] == ["-w", workspace_file]
    [entry] = yaml.safe_load((ROOT / workspace_file).read_text())["load_from"]
    grpc = entry["grpc_server"]
    assert grpc["host"] == "dagster-code"
    assert str(grpc["port"]) == command[command.index("-p") + 1]
    assert grpc["location_name"] == command[command.index("--location-name") + 1]
    # The Dockerfile ships the workspace file into the image's working directory.
    assert "COPY deploy ./deploy" in (ROOT / "Dockerfile").read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_code_server_command_serves_the_definitions(tmp_path):
    """docker-compose.yml's dagster-code command, only host and port changed, run here:
    `dagster api grpc-health-check` answers, and the definitions load through it."""
    from dagster._core.remote_origin import GrpcServerCodeLocationOrigin

    from kline_assets.definitions import defs

    command = code_server_command()
    port = _free_port()
    command[command.index("-h") + 1] = "127.0.0.1"
    command[command.index("-p") + 1] = str(port)
    location_name = command[command.index("--location-name") + 1]
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    log = tmp_path / "code_server.log"
    started = time.monotonic()
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            check = subprocess.run([str(bin_dir / "dagster"), "api", "grpc-health-check",
                                    "-p", str(port)], env=env, capture_output=True,
                                   text=True, timeout=60)
            if check.returncode == 0:
                break
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, check.stdout + check.stderr
            time.sleep(1)
        print(f"code server serving after {time.monotonic() - started:.1f}s")
        with instance_for_test() as instance:
            origin = GrpcServerCodeLocationOrigin(host="127.0.0.1", port=port,
                                                  location_name=location_name)
            with origin.create_location(instance) as location:
                [repo] = location.get_repositories().values()
                jobs = {j.name for j in repo.get_all_jobs()}
                assets = {n.key for n in repo.asset_graph.asset_nodes}
        assert assets == set(defs.resolve_asset_graph().get_all_asset_keys())
        assert {"price_assets", "live_refresh", "stock_handover_job"} <= jobs
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_the_helm_values_say_what_dagster_yaml_and_compose_say():
    values = yaml.safe_load((ROOT / "deploy" / "k8s" / "values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    queue = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    coordinator = instance_yaml()["run_coordinator"]["config"]
    assert queue["tagConcurrencyLimits"] == coordinator["tag_concurrency_limits"]
    assert queue["maxConcurrentRuns"] == coordinator["max_concurrent_runs"]
    assert values["dagsterDaemon"]["runMonitoring"]["enabled"] is True
    [deployment] = values["dagster-user-deployments"]["deployments"]
    command = code_server_command()
    # The chart runs `dagster api grpc <args> -h … -p <port>`: the compose command's arguments
    # without its host and port.
    args = [a for i, a in enumerate(command[3:])
            if a not in ("-h", "-p") and command[3:][i - 1] not in ("-h", "-p")]
    assert deployment["dagsterApiGrpcArgs"] == args
