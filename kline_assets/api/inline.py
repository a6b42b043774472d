"""Answers built on the event loop when nothing they need can block.

A page that memory holds (a kept page, a month slice, the catalogue names) costs a few hundred
microseconds of Python; through a sync FastAPI endpoint it cost four hand-offs to the thread
pool besides (each dependency, the endpoint, the response validation), more than the page
itself. So the price endpoints first build their answer inline, on the loop, with every
store read forbidden (`may_block` raises `NeedsStore` before a read that would wait on
ClickHouse or PostgreSQL), and only when that is refused build it again in the thread pool.
Building is free of side effects until its reads succeed, so the second try sees the state the
first one left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")

_INLINE: ContextVar[bool] = ContextVar("kline_inline", default=False)


class NeedsStore(Exception):
    """The answer needs a store (or a lock another request holds): build it in the pool."""


def may_block() -> None:
    """Called before anything that can wait on a store or a lock held across a store read."""
    if _INLINE.get():
        raise NeedsStore


@contextmanager
def _inline() -> Iterator[None]:
    token = _INLINE.set(True)
    try:
        yield
    finally:
        _INLINE.reset(token)


async def inline_or_pooled(inline_ok: bool, build: Callable[[], T],
                           pooled: Callable[[], T]) -> T:
    """`build()` on the loop when `inline_ok` and it needs no store, else `pooled()` in the
    thread pool (the context it copies is outside `_inline`)."""
    if inline_ok:
        try:
            with _inline():
                return build()
        except NeedsStore:
            pass
    return await run_in_threadpool(pooled)
