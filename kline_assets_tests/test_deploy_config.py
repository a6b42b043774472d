"""The scale-out deployment files agree with each other and with the code (no Docker engine, no
ClickHouse cluster here: what is checked is the configuration, not a running cluster)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

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
    for name in ("dagster-webserver", "dagster-daemon"):
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
