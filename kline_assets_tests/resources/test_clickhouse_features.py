"""The server features the SQL relies on are one list, checked against the engine's version
before anything is written; the deployment image is recent enough for all of them."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from kline_assets.lib.errors import KlineError, ServerVersionError
from kline_assets.resources.clickhouse.features import (
    DEPLOYMENT_RELEASE,
    MINIMUM_RELEASE,
    SERVER_FEATURES,
    missing_features,
    replace_partition_settings,
    require_server_features,
)
from kline_assets.resources.clickhouse.resource import ClickHouseResource

ADDRESS = "clickhouse.example:8123"


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:2])


def test_the_minimum_release_is_the_newest_feature_of_the_list():
    assert _release(MINIMUM_RELEASE) == max(_release(f.since) for f in SERVER_FEATURES)
    assert missing_features(MINIMUM_RELEASE + ".1.1") == []


def test_an_older_server_is_refused_in_one_line_naming_the_minimum_and_what_it_lacks():
    with pytest.raises(ServerVersionError) as caught:
        require_server_features("22.8.21.38", ADDRESS)
    message = str(caught.value)
    assert isinstance(caught.value, KlineError)
    assert "\n" not in message
    assert ADDRESS in message and "22.8.21.38" in message
    assert f"needs {MINIMUM_RELEASE} or later" in message
    assert "lightweight DELETE" in message and "since 23.3" in message
    assert "window functions" not in message  # 22.8 has those


@pytest.mark.parametrize("version", [None, "", "unknown"])
def test_a_server_without_a_readable_version_is_refused(version):
    with pytest.raises(ServerVersionError, match="no usable version"):
        require_server_features(version, ADDRESS)


def test_the_embedded_engine_passes_and_reports_its_version(clickhouse):
    with clickhouse.client() as client:
        version = clickhouse.check_server(client)
    assert re.fullmatch(r"\d+\.\d+(\.\d+)*", version)
    assert missing_features(version) == []


def test_the_schema_is_not_touched_on_a_server_too_old_for_it(clickhouse_dsn):
    resource = ClickHouseResource(dsn=clickhouse_dsn, database=f"t_{uuid.uuid4().hex[:10]}")
    with resource.client() as client:
        real = client.server_version
        client.server_version = "21.8.15.7"  # what an old server reports when it connects
        try:
            with pytest.raises(ServerVersionError, match=re.escape("is version 21.8.15.7")):
                resource.ensure_schema(client)
        finally:
            client.server_version = real
        assert resource.db not in {r[0] for r in client.query(
            "SELECT name FROM system.databases").result_rows}


def test_the_empty_source_setting_goes_only_to_servers_that_know_it(clickhouse):
    with clickhouse.client() as client:
        assert replace_partition_settings(client) == {
            "allow_replace_partition_from_empty_source": 1}  # chdb 26.9
        real = client.server_version
        client.server_version = "25.8.3.1"  # the setting does not exist before 26.6
        try:
            assert replace_partition_settings(client) == {}
        finally:
            client.server_version = real


def test_the_deployment_image_is_the_release_the_code_names_and_recent_enough(repo_root: Path):
    compose = (repo_root / "docker-compose.yml").read_text()
    (tag,) = re.findall(r"image:\s*clickhouse/clickhouse-server:(\S+)", compose)
    assert tag == DEPLOYMENT_RELEASE
    assert missing_features(tag) == []
    assert _release(tag) >= (26, 6)  # the empty-source setting is sent to it
