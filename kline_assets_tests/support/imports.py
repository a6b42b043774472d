"""Modules imported in the main thread before any test serves requests from another.

Python 3.11's parser keeps its recursion depth per interpreter, not per thread (CPython
gh-106905): two threads parsing at once can fail with `SystemError: AST constructor recursion
depth mismatch`. Under pytest that happens on imports: pytest compiles from source the modules
it rewrites — the test modules and every package that ships a pytest plugin, anyio among them —
and anyio imports its submodules lazily (parsing their source for the lazy names), on first
use, which for FileResponse or a thread-pool hand-off is a server thread. A served page's
`open_file` once failed that way while the main thread compiled something else.
"""

from __future__ import annotations

import importlib
import pkgutil


def import_anyio_eagerly() -> list[str]:
    """Every anyio module that imports here (a backend whose library is not installed does
    not); the names imported."""
    import anyio

    done = []
    for info in pkgutil.walk_packages(anyio.__path__, "anyio."):
        try:
            importlib.import_module(info.name)
        except ImportError:
            continue
        done.append(info.name)
    return done
