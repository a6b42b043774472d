"""The ClickHouse server features the project's SQL relies on, with the release that brought
each, checked against the server's version before anything is written.

An older server would otherwise fail half-way through a run with an error about one statement
("unknown setting", "syntax error"); this list turns that into one line naming the minimum
release, at `kline init` and at every schema check. The tests run embedded chdb (engine 26.9);
the deployment image (docker-compose.yml) is the 26.8 LTS server. Each release below is one
whose changelog has the feature generally available (the first may be older); none but 26.9 is
tested here.
"""

from __future__ import annotations

from dataclasses import dataclass

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.common import version_at_least

from kline_assets.lib.errors import ServerVersionError

# The image docker-compose.yml runs: the current long-term-support release line.
DEPLOYMENT_RELEASE = "26.8"


@dataclass(frozen=True)
class ServerFeature:
    name: str
    since: str
    used_by: str


SERVER_FEATURES: tuple[ServerFeature, ...] = (
    ServerFeature("ALTER TABLE … REPLACE PARTITION … FROM / DROP PARTITION ID", "20.1",
                  "every partitioned write and the run workflow's promote and drop"),
    ServerFeature("DROP TABLE … SYNC on Atomic databases", "20.10",
                  "staging tables and scratch databases leave the store at once"),
    ServerFeature("the _partition_id virtual column", "21.6",
                  "promote copies a run's partitions by id"),
    ServerFeature("window functions (count() OVER ())", "21.9",
                  "a read page's total in the same query"),
    ServerFeature("lightweight DELETE FROM", "23.3",
                  "the live refresh replaces the open tail of cross_shop_agg"),
)

MINIMUM_RELEASE = max((f.since for f in SERVER_FEATURES),
                      key=lambda v: tuple(int(p) for p in v.split(".")))

# Since 26.6 REPLACE PARTITION refuses an empty source unless this is set; before 26.6 an
# empty source always cleared the partition and the setting did not exist (an older server
# rejects it as unknown), so it is sent only where it exists.
_EMPTY_SOURCE_SETTING = ("allow_replace_partition_from_empty_source", "26.6")


def missing_features(version: str) -> list[ServerFeature]:
    """The listed features a server of `version` lacks."""
    return [f for f in SERVER_FEATURES if not version_at_least(version, f.since)]


def require_server_features(version: str | None, address: str) -> str:
    """`version`, or ServerVersionError naming the minimum release and what is missing."""
    if not version or not version.split(".")[0].isdigit():
        raise ServerVersionError(
            f"ClickHouse at {address} reports no usable version ({version!r}); kline_assets "
            f"needs {MINIMUM_RELEASE} or later")
    missing = missing_features(version)
    if missing:
        lacking = "; ".join(f"{f.name} (since {f.since}, for {f.used_by})" for f in missing)
        raise ServerVersionError(
            f"ClickHouse at {address} is version {version}; kline_assets needs "
            f"{MINIMUM_RELEASE} or later (the deployment runs {DEPLOYMENT_RELEASE} LTS). "
            f"Missing: {lacking}")
    return version


def replace_partition_settings(client: Client) -> dict[str, int]:
    """Settings for REPLACE PARTITION … FROM a staging table that may hold no rows for the
    partition (re-materializing a month that became empty must clear it)."""
    name, since = _EMPTY_SOURCE_SETTING
    return {name: 1} if client.min_version(since) else {}
