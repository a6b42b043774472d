"""Running the read service for weeks: uvicorn's process supervisor with one worker, replaced
once its embedded-engine opens reach a ceiling.

The worker opens the embedded engine again each time it lets a Dagster run in, and chdb 4.4
leaves ~5 threads and ~2 MiB behind every open. When the worker's opens reach
`max_engine_opens` it asks the supervisor (SIGHUP) for a replacement: the supervisor starts a
new worker on the same socket, waits until it serves, and only then stops the old one
gracefully, so no request is refused and the service's threads stay under a fixed ceiling.
Until then the worn worker keeps the engine open unless a run waits for it, so it adds no
reopens of its own while its replacement starts.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from kline_assets.api import DEFAULT_CACHE_MIB
from kline_assets.resources.clickhouse.engine import engine_opens

OPTIONS_ENV = "KLINE_SERVE_OPTIONS"
DEFAULT_MAX_ENGINE_OPENS = 50  # ~250 threads and ~100 MiB left behind before a replacement
# The supervisor pings its worker and kills one that does not answer in time. A worker that is
# still importing its libraries (PyTorch's native start holds the interpreter for seconds on a
# busy machine) cannot answer; uvicorn's 5 s killed it again and again, so a loaded host took
# a minute to serve.
WORKER_HEALTHCHECK_S = 60


def retire_after(app: FastAPI, max_engine_opens: int, retire: Callable[[], None]) -> None:
    """Call `retire` once, after the first response given with the engine opened
    `max_engine_opens` times in this process (0: never). A plain ASGI wrapper: Starlette's
    `BaseHTTPMiddleware` would cost every request more than a kept page does."""
    asked = False

    class RetireWhenWorn:
        def __init__(self, inner: ASGIApp) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            nonlocal asked
            await self.inner(scope, receive, send)
            if scope["type"] == "http" and max_engine_opens > 0 and not asked \
                    and engine_opens() >= max_engine_opens:
                asked = True
                retire()

    app.add_middleware(RetireWhenWorn)


def _ask_supervisor_for_a_replacement(app: FastAPI) -> None:
    app.state.stores.keeper.retiring = True
    os.kill(os.getppid(), signal.SIGHUP)


def served_app() -> FastAPI:
    """The app of one supervised worker (uvicorn factory), with the options `serve` set."""
    from kline_assets.api.app import create_app

    options = json.loads(os.environ[OPTIONS_ENV])
    app = create_app(hold_s=options["hold_s"], cache_pages=options["cache_pages"],
                     cache_ttl_s=options["cache_ttl_s"], cache_mib=options["cache_mib"])
    retire_after(app, options["max_engine_opens"],
                 lambda: _ask_supervisor_for_a_replacement(app))
    return app


def serve(host: str, port: int, *, hold_s: float, cache_pages: int, cache_ttl_s: float,
          max_engine_opens: int = DEFAULT_MAX_ENGINE_OPENS,
          cache_mib: int = DEFAULT_CACHE_MIB) -> None:
    """Bind the socket here, in the supervisor, and keep one worker serving on it."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    os.environ[OPTIONS_ENV] = json.dumps({
        "hold_s": hold_s, "cache_pages": cache_pages, "cache_ttl_s": cache_ttl_s,
        "cache_mib": cache_mib, "max_engine_opens": max_engine_opens})
    config = uvicorn.Config("kline_assets.api.serving:served_app", factory=True, host=host,
                            port=port, workers=1, log_level="info",
                            timeout_worker_healthcheck=WORKER_HEALTHCHECK_S)
    Multiprocess(config, sockets=[config.bind_socket()]).run()
