"""A recording ClickHouse client for the cluster-mode statements, without a cluster.

`record_statements` replaces `ClickHouseResource.client` for the duration of a test: every
statement the code sends is recorded exactly as sent (text and settings), then run on the
embedded engine in its single-server form — ON CLUSTER removed, Replicated engines back to
their plain MergeTree, the replication settings dropped, SYSTEM SYNC REPLICA skipped. So the
real code paths run to the end on real data, and the test reads what a cluster would have
been sent. That the cluster accepts those statements is not proven here (no server, no
Keeper); what is proven is their text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from kline_assets.resources.clickhouse import ClickHouseResource
from kline_assets.resources.clickhouse import cluster as cl

CLUSTER = "kline_cluster"
REPLICATION_SETTINGS = {"insert_quorum", "insert_quorum_parallel",
                        "select_sequential_consistency", "alter_sync", "mutations_sync"}
_ON = re.compile(r" ON CLUSTER \w+")
_REPLICATED = re.compile(r"Replicated(\w*MergeTree)\('[^']*', '\{replica\}'(?:, )?")


@dataclass(frozen=True)
class Sent:
    method: str          # command | query | query_arrow | query_df | insert_arrow
    text: str            # the statement, or the table an insert_arrow writes
    settings: dict[str, Any] | None


def single_server(text: str) -> str:
    """The statement a single server would get for a cluster statement."""
    return _REPLICATED.sub(r"\1(", _ON.sub("", text))


def _local_settings(settings: dict[str, Any] | None) -> dict[str, Any] | None:
    if settings is None:
        return None
    return {k: v for k, v in settings.items() if k not in REPLICATION_SETTINGS}


@dataclass
class RecordingClient:
    inner: Any
    log: list[Sent] = field(default_factory=list)

    def _run(self, method: str, text: str, *args, settings=None, **kwargs):
        self.log.append(Sent(method, text, settings))
        if text.lstrip().upper().startswith("SYSTEM SYNC REPLICA"):
            return None
        return getattr(self.inner, method)(single_server(text), *args,
                                           settings=_local_settings(settings), **kwargs)

    def command(self, cmd: str, *args, **kwargs):
        return self._run("command", cmd, *args, **kwargs)

    def query(self, query: str, *args, **kwargs):
        return self._run("query", query, *args, **kwargs)

    def query_arrow(self, query: str, *args, **kwargs):
        return self._run("query_arrow", query, *args, **kwargs)

    def query_df(self, query: str, *args, **kwargs):
        return self._run("query_df", query, *args, **kwargs)

    def insert_arrow(self, table: str, arrow_table, *args, settings=None, **kwargs):
        self.log.append(Sent("insert_arrow", table, settings))
        return self.inner.insert_arrow(table, arrow_table, *args,
                                       settings=_local_settings(settings), **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


@contextmanager
def record_statements(monkeypatch: pytest.MonkeyPatch, cluster: str | None = CLUSTER
                      ) -> Iterator[list[Sent]]:
    """Record every statement sent through ClickHouseResource.client, with
    KLINE_CLICKHOUSE_CLUSTER set to `cluster` (unset for None) and the embedded engine
    standing in for the cluster."""
    if cluster:
        monkeypatch.setenv(cl.CLUSTER_ENV, cluster)
    else:
        monkeypatch.delenv(cl.CLUSTER_ENV, raising=False)
    monkeypatch.setattr(cl, "require_server", lambda *a: None)
    log: list[Sent] = []
    real = ClickHouseResource.client

    @contextmanager
    def client(self: ClickHouseResource):
        with real(self) as inner:
            yield RecordingClient(inner, log)

    monkeypatch.setattr(ClickHouseResource, "client", client)
    yield log
