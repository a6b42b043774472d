"""A page's `next` and `previous` links are, byte for byte, what Starlette's own URL methods
make of the request's URL, whatever its query holds (repeated, blank, encoded, non-ASCII
parameters, `limit` and `offset` anywhere or several times)."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from kline_assets.api.pagination import page


def starlette_links(request: Request, count: int, limit: int, offset: int
                    ) -> tuple[str | None, str | None]:
    """DRF's LimitOffsetPagination links through Starlette's `include_query_params` and
    `remove_query_params`: the reference."""
    url = request.url
    nxt = str(url.include_query_params(limit=limit, offset=offset + limit)) \
        if offset + limit < count else None
    prev = None
    if offset > 0:
        prev = str(url.include_query_params(limit=limit).remove_query_params("offset")) \
            if offset - limit <= 0 else \
            str(url.include_query_params(limit=limit, offset=offset - limit))
    return nxt, prev


def request(path: str, query: bytes, host: bytes = b"api.example:8000") -> Request:
    return Request({"type": "http", "method": "GET", "scheme": "http", "path": path,
                    "raw_path": path.encode(), "query_string": query, "root_path": "",
                    "headers": [(b"host", host)], "server": ("127.0.0.1", 8000)})


KEYS = st.sampled_from(["limit", "offset", "iphone", "bucket__gte", "ordering", "a b", "é",
                        "x%26y", ""])
VALUES = st.text(alphabet=st.sampled_from("09az-:+ &=%é,T"), max_size=8)


@st.composite
def queries(draw) -> bytes:
    pairs = draw(st.lists(st.tuples(KEYS, VALUES), max_size=6))
    raw = draw(st.booleans())  # as a browser encodes it, or with raw characters left in
    parts = [f"{k}={v}" if raw else f"{quote(k)}={quote(v)}" for k, v in pairs]
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(["flag", "", "=x", "&"])))
    return "&".join(parts).encode()


@settings(max_examples=400, deadline=None)
@given(query=queries(), count=st.integers(0, 500), limit=st.integers(1, 100),
       offset=st.integers(0, 600))
def test_page_links_are_the_links_starlette_writes(query, count, limit, offset):
    req = request("/api/overall-bars/", query)
    body = page(req, count, [], limit, offset)
    assert (body["next"], body["previous"]) == starlette_links(req, count, limit, offset)


def test_the_previous_link_of_the_second_page_drops_offset_as_drf_does():
    req = request("/api/features/", b"offset=5&scope=iphone:1&limit=5&offset=9")
    body = page(req, 20, [], 5, 5)
    assert body["previous"] == "http://api.example:8000/api/features/?scope=iphone%3A1&limit=5"
    assert body["next"] == \
        "http://api.example:8000/api/features/?scope=iphone%3A1&limit=5&offset=10"


@settings(max_examples=400, deadline=None)
@given(query=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
       count=st.integers(0, 500), limit=st.integers(1, 100), offset=st.integers(0, 600))
def test_any_ascii_query_keeps_its_other_parameters_as_starlette_writes_them(query, count, limit,
                                                                             offset):
    req = request("/api/overall-bars/", query.encode())
    body = page(req, count, [], limit, offset)
    assert (body["next"], body["previous"]) == starlette_links(req, count, limit, offset)
