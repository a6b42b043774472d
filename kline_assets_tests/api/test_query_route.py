"""The price endpoints solve their query parameters themselves (`QueryRoute`), and answer
every query — well-formed, malformed, repeated, blank, out of range — byte for byte as
FastAPI's own solver does (which the same app falls back to while dependency overrides are
set)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from kline_assets.api import prices
from kline_assets.api.app import create_app
from kline_assets.api.query_route import BeforeRouting, QueryRoute

PARAMS = {
    "/api/overall-bars/": ["iphone"],
    "/api/cohort-bars/": ["cohort__slug"],
    "/api/features/": ["scope", "name"],
    "/api/purchasing-time-analyses/": ["shop", "iphone"],
}
LISTING = ["run_id", "bucket__gte", "bucket__lte", "ordering", "limit", "offset"]
VALUES = st.sampled_from([
    "", "1", "2", "1,3", " 2", "-1", "0", "3", "100", "500", "501", "1e2", "abc", "live",
    "backfill_v3", "nope", "LIVE", "2025-10-01", "2025-10-07T08:00", "2025-10-07T08:00+09:00",
    "2025-13-01", "-bucket", "mean,-iphone", "bucket,", "shop", "iphone:1", "iphone:*",
    "cohort:pro-latest", "cohort:*", "pro-latest", "mean", "ema_120", "x" * 41, "é", "1%2C2"])


def no_override() -> None:
    """A dependency no route uses: overriding it changes no answer, only the solver."""


@pytest.fixture(scope="module")
def uncached(read_store):
    """The service without kept bodies or pages: every request is solved and read."""
    app = create_app(read_store.clickhouse, read_store.postgres, cache_pages=0)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield app, client


@contextmanager
def general(app: FastAPI) -> Iterator[None]:
    """While any dependency override is set, FastAPI's own solver answers."""
    app.dependency_overrides[no_override] = no_override
    try:
        yield
    finally:
        app.dependency_overrides.clear()


def test_every_price_endpoint_is_solved_by_its_query_route(uncached):
    routes = [r for r in prices.router.routes if r.path in PARAMS]
    assert len(routes) == len(PARAMS)
    assert all(isinstance(r, QueryRoute) and r.solved for r in routes)


@st.composite
def requests(draw) -> str:
    path = draw(st.sampled_from(sorted(PARAMS)))
    keys = st.sampled_from([*PARAMS[path], *LISTING, "unknown"])
    pairs = draw(st.lists(st.tuples(keys, VALUES), max_size=5))
    return path + "?" + "&".join(f"{k}={quote(v, safe=',:*')}" for k, v in pairs)


@settings(max_examples=250, deadline=None)
@given(url=requests())
def test_any_query_is_answered_as_fastapi_answers_it(uncached, url):
    app, client = uncached
    solved = client.get(url)
    with general(app):
        reference = client.get(url)
    assert (solved.status_code, solved.content) == (reference.status_code, reference.content)


def before_routing(app: FastAPI) -> BeforeRouting:
    layer = app.middleware_stack
    while not isinstance(layer, BeforeRouting):
        layer = layer.app
    return layer


def test_a_path_asked_again_is_answered_before_routing(uncached):
    app, client = uncached
    url = "/api/overall-bars/?iphone=2&limit=3&ordering=mean"
    first = client.get(url)
    answered = before_routing(app).answered
    again = client.get(url)
    assert before_routing(app).answered == answered + 1
    assert (again.status_code, again.content) == (first.status_code, first.content) \
        and first.status_code == 200


def test_an_error_met_before_routing_gets_the_app_s_error_response(uncached):
    app, client = uncached
    client.get("/api/overall-bars/?iphone=2")  # the path's handler is known from here on
    for url, status in [("/api/overall-bars/?ordering=shop", 400),
                        ("/api/overall-bars/?run_id=nope", 404)]:
        res = client.get(url)
        with general(app):
            reference = client.get(url)
        assert res.status_code == status and res.content == reference.content


def test_a_malformed_query_gets_fastapi_s_error(uncached):
    _, client = uncached
    res = client.get("/api/overall-bars/?limit=0&offset=-1&run_id=NO")
    assert res.status_code == 400
    detail = res.json()["detail"]
    assert "run_id" in detail and "limit" in detail and "offset" in detail
