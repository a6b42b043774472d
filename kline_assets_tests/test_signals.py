"""A consumer asked to stop while Arrow is reading finishes the read: the signal reaches the
consumer's own handler and nothing is cancelled."""

from __future__ import annotations

import subprocess
import sys

from kline_assets_tests.support.ticks import REPO

READ_WHILE_SIGNALLED = """
import io, os, signal, sys, threading
import pyarrow.csv as pacsv
from kline_assets.lib.signals import stop_on_signals

got = []
if sys.argv[1] == "consumer":
    stop_on_signals(lambda *_: got.append("stop"))
else:  # the handler alone, as before
    signal.signal(signal.SIGTERM, lambda *_: got.append("stop"))
data = b"a,b,c\\n" + b"1,2.5,xyz\\n" * 4_000_000  # a read of a second or so
threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM)).start()
try:
    rows = pacsv.read_csv(io.BytesIO(data),
                          read_options=pacsv.ReadOptions(use_threads=False)).num_rows
except Exception as exc:
    rows = type(exc).__name__
print(rows, got)
"""


def read_while_signalled(mode: str) -> str:
    return subprocess.run([sys.executable, "-c", READ_WHILE_SIGNALLED, mode], cwd=REPO,
                          capture_output=True, text=True, check=True, timeout=120).stdout.strip()


def test_sigterm_during_an_arrow_read_stops_the_consumer_after_the_read():
    assert read_while_signalled("consumer") == "4000000 ['stop']"


def test_without_it_arrow_cancels_the_read_the_signal_lands_in():
    """The failure the consumers had: the reference that shows the test above can fail."""
    assert read_while_signalled("plain").startswith("ArrowCancelled")
