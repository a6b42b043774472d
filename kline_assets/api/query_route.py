"""`QueryRoute`: FastAPI's route for endpoints that take nothing but query parameters (and
dependencies of query parameters and the request), with those parameters solved by fields
compiled once per route instead of FastAPI's general solver.

FastAPI re-derives, for every parameter of every request, what kind of parameter it is
(sequence or not, model or not, its aliases) before validating it; on a price page that cost
a third of the request, more than reading the page. A `QueryRoute` does that derivation once
and validates each value with the very field FastAPI built for it (same validator, same
defaults), so a well-formed request is solved exactly as FastAPI would solve it. Everything
else is FastAPI's own handling: a request that fails validation (so the error is FastAPI's),
a route with anything besides query parameters, dependency overrides, and OpenTelemetry
tracing of the request. The route, its OpenAPI schema and its error handling are unchanged.

`BeforeRouting` then answers the routes' GETs with that same handler before the app's routing
and inner middleware, which cost a page a seventh again.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.telemetry import get_telemetry_data
from starlette.types import ASGIApp, Receive, Scope, Send

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
_IMMUTABLE = (type(None), bool, int, float, str, bytes, tuple, frozenset)
_REQUIRED = object()


@dataclass(frozen=True)
class _Param:
    """One query parameter, as FastAPI's solver would find it."""

    name: str
    alias: str
    many: bool  # a sequence: every occurrence, else the last
    field: Any  # FastAPI's ModelField
    default: Any

    def solve(self, query: Any, values: dict[str, Any]) -> bool:
        """Set `values[name]`; False when FastAPI would answer a validation error."""
        raw = query.getlist(self.alias) if self.many else query.get(self.alias)
        if raw is None or (self.many and not raw):
            if self.default is _REQUIRED:
                return False
            values[self.name] = self.default
            return True
        value, errors = self.field.validate(raw, values, loc=("query", self.alias))
        if errors:
            return False
        values[self.name] = value
        return True


@dataclass(frozen=True)
class _Solver:
    """A dependant of query parameters, a request parameter and such sub-dependants."""

    call: Callable[..., Any]
    params: tuple[_Param, ...]
    request_name: str | None
    subs: tuple[tuple[str, _Solver], ...]

    async def solve(self, request: Request) -> dict[str, Any] | None:
        values: dict[str, Any] = {}
        for name, sub in self.subs:
            sub_values = await sub.solve(request)
            if sub_values is None:
                return None
            values[name] = await sub.call(**sub_values)
        query = request.query_params
        for param in self.params:
            if not param.solve(query, values):
                return None
        if self.request_name is not None:
            values[self.request_name] = request
        return values


def _compile(dependant: Dependant, seen: set[Any] | None = None) -> _Solver | None:
    """The solver of `dependant`, or None where it takes more than this route solves (a
    dependency met twice included: FastAPI would call it once)."""
    seen = set() if seen is None else seen
    if dependant.call in seen or getattr(dependant, "concurrency", None) is not None:
        return None
    seen.add(dependant.call)
    try:
        from fastapi.dependencies.utils import (
            _get_param_aliases,
            _get_param_model,
            _is_coroutine_callable,
            field_annotation_is_sequence,
        )
    except ImportError:  # another FastAPI: its own solver for everything
        return None
    if (dependant.path_params or dependant.header_params or dependant.cookie_params
            or dependant.body_params or dependant.http_connection_param_name
            or dependant.websocket_param_name or dependant.background_tasks_param_name
            or dependant.response_param_name or dependant.security_scopes_param_name
            or dependant.call is None or not _is_coroutine_callable(dependant.call)):
        return None
    params = []
    for field in dependant.query_params:
        info, aliases = field.field_info, _get_param_aliases(field)
        if (_get_param_model(field) is not None or len(aliases) != 1
                or info.validate_default or any(type(m).__name__ == "Json" for m in info.metadata)
                or not isinstance(field.default, _IMMUTABLE)):
            return None
        params.append(_Param(field.name, aliases[0][1],
                             field_annotation_is_sequence(info.annotation), field,
                             _REQUIRED if info.is_required() else field.default))
    subs = []
    for sub in dependant.dependencies:
        solver = _compile(sub, seen)
        if solver is None or sub.name is None:
            return None
        subs.append((sub.name, solver))
    return _Solver(dependant.call, tuple(params), dependant.request_param_name, tuple(subs))


def _effective(route: APIRoute) -> Any | None:
    """What FastAPI builds `route`'s handler from: the route as included in its app (with the
    including routers' prefixes and dependencies) while the app includes it; None where this
    FastAPI does it another way."""
    try:
        from fastapi.routing import _effective_route_context_var
    except ImportError:
        return None
    context = _effective_route_context_var.get()
    return context if context is not None and context.original_route is route else route


def _returns_response(endpoint: Callable[..., Any]) -> bool:
    try:
        returned = inspect.signature(endpoint, eval_str=True).return_annotation
    except (NameError, TypeError, ValueError):
        return False
    return isinstance(returned, type) and issubclass(returned, Response)


class QueryRoute(APIRoute):
    """An APIRoute (`APIRouter(route_class=QueryRoute)`) whose well-formed requests skip
    FastAPI's general parameter solver; see the module's docstring. Its endpoints are
    coroutines that return a Response."""

    solved: bool = False
    """Whether the last handler built solves the parameters itself."""

    def get_route_handler(self) -> Handler:
        general = super().get_route_handler()
        route = _effective(self)
        solver = None if route is None or route.dependant is None else _compile(route.dependant)
        if solver is None or route.dependant.call is not route.endpoint \
                or not _returns_response(route.endpoint):
            self.solved = False
            return general
        self.solved = True
        endpoint, overrides = route.endpoint, route.dependency_overrides_provider

        async def answer(request: Request) -> Response | None:
            """The endpoint's response, or None where FastAPI's own handler answers (a
            malformed query gets FastAPI's error)."""
            if (overrides is not None and getattr(overrides, "dependency_overrides", None)) \
                    or get_telemetry_data() is not None:
                return None
            values = await solver.solve(request)
            return None if values is None else await endpoint(**values)

        async def handle(request: Request) -> Response:
            raised = request.scope.pop(_RAISED, None)
            if raised is not None:
                raise raised  # met before routing (`BeforeRouting`): the app's handlers map it
            response = await answer(request)
            if response is None:
                return await general(request)
            request.scope[_ANSWER] = answer
            return response

        return handle


_ANSWER = "kline.query_route.answer"
"""Where a QueryRoute's handler leaves its `answer` for `BeforeRouting` (the scope)."""
_RAISED = "kline.query_route.raised"


class BeforeRouting:
    """ASGI middleware: a GET of one of `paths` is answered by its QueryRoute without the app's
    routing and inner middleware (a seventh of a page's cost), once a first request of the
    path went through the app and the route's handler left its `answer` — the very handler
    FastAPI built for this app's route. What `answer` declines goes through the app; what it
    raises too, where the route's handler raises it again for the app's exception handlers,
    so every error response is the one the app gives."""

    def __init__(self, app: ASGIApp, paths: Iterable[str]) -> None:
        self.app, self.paths = app, frozenset(paths)
        self._answers: dict[str, Callable[[Request], Coroutine[Any, Any, Response | None]]] = {}
        self.answered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path") \
                or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        answer = self._answers.get(scope["path"])
        if answer is not None:
            try:
                response = await answer(Request(scope, receive, send))
            except Exception as exc:
                scope[_RAISED], response = exc, None
            if response is not None:
                self.answered += 1
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
        found = scope.pop(_ANSWER, None)
        if found is not None:
            self._answers[scope["path"]] = found


__all__ = ["BeforeRouting", "QueryRoute"]
