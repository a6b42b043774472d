"""Price pages as response bodies: encoded once, served again as bytes while they stay true.

A kept page (`stores.ReadCache`) saved the read but not the rest: validating 100 rows against
the response model and encoding them again cost more than the read from memory. So the body
is kept too, under the data's version (`Stores.known_version`) and the full URL (the page's
`next`/`previous` links are built from it), and only until the first of its buckets turns
final — past that moment the same rows read `is_final: true`. The body is exactly what
FastAPI would send for the endpoint's `response_model` (same validation, same encoder).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any

from fastapi import Request, Response
from pydantic import TypeAdapter

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


def encode(adapter: TypeAdapter, payload: dict[str, Any]) -> bytes:
    """The body FastAPI sends for a `response_model` (its `ModelField.validate`, then
    `serialize_json` with its defaults)."""
    return adapter.dump_json(adapter.validate_python(payload, from_attributes=True),
                             by_alias=True)


async def respond(request: Request, stores: Stores, adapter: TypeAdapter, build: Build
                  ) -> Response:
    """The endpoint's body: kept bytes, else `build()` on the loop when memory answers it,
    else in the thread pool; encoded as FastAPI encodes a `response_model`."""
    url = str(request.url)
    version = stores.known_version()
    if version is not None:
        body = stores.encoded.get(version, url, time.time())
        if body is not None:
            return Response(body, media_type="application/json")

    def pooled() -> tuple[Hashable | None, tuple[dict[str, Any], float | None]]:
        stores.keeper.touch()
        seen = stores.pages.version()  # before the read, as kept pages are versioned
        return seen, build()

    seen, (payload, until) = await inline_or_pooled(
        version is not None, lambda: (version, build()), pooled)
    body = encode(adapter, payload)
    if seen is not None and stores.known_version() == seen:  # no writer got in meanwhile
        stores.encoded.put(seen, url, body, until)
    return Response(body, media_type="application/json")
