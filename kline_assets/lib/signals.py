"""How a long-running consumer stops: SIGTERM or SIGINT finish the batch in hand."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pyarrow.lib


def stop_on_signals(stop: Callable[[int, object], object]) -> None:
    """`stop` on SIGTERM and SIGINT, with Arrow's own interruption switched off: during a
    long read (its CSV parser decodes every stream batch) Arrow takes those signals for
    itself and cancels the read, so a supervisor's SIGTERM crashed the consumer mid-batch
    instead of letting it finish and acknowledge what it had."""
    pyarrow.lib.enable_signal_handlers(False)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
