"""Price pages as response bodies: encoded once, served again as bytes while they stay true.

A kept page (`stores.ReadCache`) saved the read but not the rest: validating 100 rows against
the response model and encoding them again cost more than the read from memory. So the body
is kept too, under the version of the data and the catalogue names (`Stores.known_version`)
and the full URL (the page's `next`/`previous` links are built from it), and only until the
first of its buckets turns final — past that moment the same rows read `is_final: true`. The
body is exactly what FastAPI would send for the endpoint's `response_model` (pydantic's
encoder); `KeptBodies` sends it again before any routing.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any

from fastapi import Request, Response
from pydantic_core import to_json
from starlette.datastructures import URL
from starlette.types import ASGIApp, Receive, Scope, Send

from kline_assets.api.inline import inline_or_pooled
from kline_assets.prices.read import final_at

if TYPE_CHECKING:
    from kline_assets.api.stores import Stores

Build = Callable[[], tuple[dict[str, Any], float | None]]
"""An endpoint's answer: the page and the epoch second until which it reads the same (None:
as long as the data does)."""


class EncodedPages:
    """Bodies by (version, URL), least recently used first out beyond `max_pages`."""

    def __init__(self, max_pages: int) -> None:
        self.max_pages = max_pages
        self._lock = threading.Lock()
        self._bodies: OrderedDict[tuple[Hashable, str], tuple[bytes, float | None]] = \
            OrderedDict()
        self.hits = 0

    def get(self, version: Hashable, url: str, now: float) -> bytes | None:
        with self._lock:
            found = self._bodies.get((version, url))
            if found is None:
                return None
            body, until = found
            if until is not None and now >= until:
                del self._bodies[(version, url)]
                return None
            self._bodies.move_to_end((version, url))
            self.hits += 1
            return body

    def put(self, version: Hashable, url: str, body: bytes, until: float | None) -> None:
        if self.max_pages <= 0:
            return
        with self._lock:
            self._bodies[(version, url)] = (body, until)
            while len(self._bodies) > self.max_pages:
                self._bodies.popitem(last=False)

    def stats(self) -> dict[str, int]:
        return {"bodies": len(self._bodies), "hits": self.hits}


def final_until(results: Iterable[dict[str, Any]]) -> float | None:
    """The epoch second the first row of a page with `is_final: false` turns final (None:
    none will)."""
    return min((final_at(r["bucket"]).timestamp() for r in results if not r["is_final"]),
               default=None)


def encode(payload: dict[str, Any]) -> bytes:
    """The body FastAPI sends for the endpoint's `response_model`, by pydantic's own JSON
    serializer without the validation pass (which cost more than the encoding): the read
    layer hands every value over already of its field's type — Python floats, ints, str and
    None from typed columns — so validating would change nothing."""
    return to_json(payload, inf_nan_mode="null")


async def respond(request: Request, stores: Stores, build: Build) -> Response:
    """The endpoint's body (a kept one was served by `KeptBodies` before routing):
    `build()` on the loop when memory answers it, else in the thread pool; encoded as FastAPI
    encodes the `response_model` and kept while its version and buckets hold."""
    version = stores.known_version()
    names = stores.names.known_generation()

    def pooled() -> tuple[Hashable, tuple[dict[str, Any], float | None]]:
        stores.keeper.touch()
        return (stores.pages.version(), names), build()  # version read before the read

    seen, (payload, until) = await inline_or_pooled(
        version is not None, lambda: (version, build()), pooled)
    body = encode(payload)
    if seen[0] is not None and seen[1] is not None and stores.known_version() == seen:
        stores.encoded.put(seen, str(request.url), body, until)  # no writer got in meanwhile
    return Response(body, media_type="application/json")


class KeptBodies:
    """ASGI middleware: a GET of one of `paths` whose body is kept for the current version
    is answered before routing — resolving the endpoint's dependencies and query parameters
    again cost more than the page. Everything else goes on to the app unchanged."""

    def __init__(self, app: ASGIApp, stores: Stores, paths: Iterable[str]) -> None:
        self.app, self.stores, self.paths = app, stores, frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] in self.paths:
            version = self.stores.known_version()
            body = None if version is None else \
                self.stores.encoded.get(version, str(URL(scope=scope)), time.time())
            if body is not None:
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-length", str(len(body)).encode()),
                    (b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
