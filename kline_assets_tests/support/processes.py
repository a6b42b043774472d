"""Counting what a long-lived process and its children hold, from /proc."""

from __future__ import annotations

import os
from pathlib import Path


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return parents


def children(pid: int) -> set[int]:
    return {p for p, parent in _parents().items() if parent == pid}


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def tree_threads(pid: int) -> tuple[int, int]:
    """Threads of `pid` alone, and of `pid` with every descendant."""
    parents = _parents()
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        found = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(found)
        frontier.extend(found)
    return _threads(pid), sum(_threads(p) for p in tree)
