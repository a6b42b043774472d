"""Stores that are down: 503 with the store and its address (never a password, never a stack
trace); the OpenAPI spec explored by schemathesis never yields a 500."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode

from kline_assets.api.app import create_app
from kline_assets.resources import ClickHouseResource, PostgresResource
from kline_assets.resources.redis import RedisResource
from kline_assets_tests.support.ports import closed_port


@pytest.fixture
def clickhouse_down(read_store):
    port = closed_port()
    ch = ClickHouseResource(dsn=f"http://reader:s3cret@127.0.0.1:{port}/kline")
    with TestClient(create_app(ch, read_store.postgres), raise_server_exceptions=False) as c:
        yield c, port


@pytest.fixture
def postgres_down(read_store):
    port = closed_port()
    pg = PostgresResource(dsn=f"postgresql://postgres:s3cret@127.0.0.1:{port}/kline",
                          connect_timeout_s=2)
    with TestClient(create_app(read_store.clickhouse, pg),
                    raise_server_exceptions=False) as c:
        yield c, port


@pytest.mark.parametrize("url", ["/api/overall-bars/", "/api/cohort-bars/", "/api/features/",
                                 "/api/purchasing-time-analyses/", "/api/runs/"])
def test_clickhouse_down_is_503_with_its_address(clickhouse_down, url):
    client, port = clickhouse_down
    res = client.get(url)
    assert res.status_code == 503, res.text
    body = res.json()
    assert body["store"] == "ClickHouse"
    assert body["address"] == f"http://127.0.0.1:{port}"
    assert f"127.0.0.1:{port}" in body["detail"]
    assert "s3cret" not in res.text and "Traceback" not in res.text


def test_postgres_down_for_the_join_is_503_with_its_address(postgres_down):
    client, port = postgres_down
    res = client.get("/api/purchasing-time-analyses/", params={"limit": 5})
    assert res.status_code == 503, res.text
    body = res.json()
    assert body["store"] == "PostgreSQL" and body["address"] == f"127.0.0.1:{port}/kline"
    assert "s3cret" not in res.text and "Traceback" not in res.text


def test_healthz_names_the_store_that_is_down(postgres_down):
    client, port = postgres_down
    res = client.get("/healthz")
    assert res.status_code == 503
    stores = {s["store"]: s for s in res.json()["stores"]}
    assert stores["clickhouse"]["ok"] is True
    assert stores["postgres"]["ok"] is False
    assert f"127.0.0.1:{port}" in stores["postgres"]["error"]


def _cases() -> list[tuple[str, GenerationMode]]:
    """(operation, mode) of the spec — negative data only where there are parameters to
    break. The spec is static: no store is touched to build it."""
    app = create_app(ClickHouseResource(dsn="chdb:///nonexistent/never-opened"),
                     PostgresResource())
    cases = []
    for result in schemathesis.openapi.from_asgi("/openapi.json", app).get_all_operations():
        op = result.ok()
        cases.append((op.label, GenerationMode.POSITIVE))
        if list(op.iter_parameters()):
            cases.append((op.label, GenerationMode.NEGATIVE))
    return cases


@pytest.fixture(scope="module")
def api_schema(read_store):
    return schemathesis.openapi.from_asgi(
        "/openapi.json", create_app(read_store.clickhouse, read_store.postgres))


@pytest.mark.parametrize(("label", "mode"), _cases(), ids=lambda v: getattr(v, "value", v))
def test_no_generated_request_gets_a_500(api_schema, label, mode):
    """Any request the spec allows, and requests it does not, are answered 2xx, 400 or 404 —
    never a 500 (a 503 only names a store that did not answer in time); 200 responses to
    valid requests match their declared schemas."""
    operation = next(op.ok() for op in api_schema.get_all_operations()
                     if op.ok().label == label)

    @given(operation.as_strategy(generation_mode=mode))
    @settings(max_examples=15, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        response = case.call()
        if response.status_code == 503:  # a store slow to answer on a loaded machine
            assert response.json()["store"] in ("ClickHouse", "PostgreSQL"), response.text
            return
        assert response.status_code < 500, (case.path, case.query, response.text)
        # Negative cases only have to avoid a 500: an empty filter (`?iphone=`) is no filter,
        # as in DRF, though the spec's types call it invalid.
        if response.status_code == 200 and mode is GenerationMode.POSITIVE:
            case.validate_response(response)

    check()


def test_a_store_without_tables_is_503_saying_kline_init(read_store, clickhouse_dsn):
    bare = ClickHouseResource(dsn=clickhouse_dsn, database="never_initialised")
    with TestClient(create_app(bare, read_store.postgres, hold_s=0),
                    raise_server_exceptions=False) as client:
        res = client.get("/api/overall-bars/")
    assert res.status_code == 503
    assert "kline init" in res.json()["detail"] and res.json()["store"] == "ClickHouse"


# Text in the shapes a date parameter takes, and its near misses: what random strings from the
# spec almost never hit (`-1`, year 1 or 99999, offsets, times past the day's end).
DATE_TEXT = st.one_of(
    st.integers(-10**18, 10**18).map(str),
    st.builds(lambda d, sep: d.isoformat(sep=sep), st.datetimes(), st.sampled_from("T ")),
    st.from_regex(r"\A-?[0-9]{1,6}(-[0-9]{1,2}(-[0-9]{1,2}([T ][0-9]{1,2}:[0-9]{2}"
                  r"(:[0-9]{2}(\.[0-9]{1,9})?)?([+-][0-9]{2}:?[0-9]{2}|Z)?)?)?)?\Z"),
)


@pytest.fixture(scope="module")
def bars_on_stores_down() -> TestClient:
    """The service on stores nothing listens on (port 1): a refused range never reaches them,
    an accepted one is a 503 naming the store the bar query found down first."""
    down = "127.0.0.1:1"
    app = create_app(ClickHouseResource(dsn=f"http://{down}/kline"),
                     PostgresResource(dsn=f"postgresql://postgres@{down}/kline",
                                      connect_timeout_s=1),
                     redis=RedisResource(url=f"redis://{down}/0"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_the_bars_date_parameters_never_get_a_500(bars_on_stores_down):
    """Any text in a date's shape, as start or end, is a 400 with the rule or reaches the
    stores — never a 500."""

    @given(start=DATE_TEXT, end=st.one_of(st.none(), DATE_TEXT))
    @settings(max_examples=150, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(start: str, end: str | None) -> None:
        params = {"symbol": "600000.SH", "period": 1, "start": start}
        if end is not None:
            params["end"] = end
        response = bars_on_stores_down.get("/api/bars/", params=params)
        assert response.status_code in (400, 503), (params, response.text)
        if response.status_code == 503:
            assert response.json()["store"] in ("PostgreSQL", "Redis"), response.text

    check()
