"""What the stock domain's CSV readers share (landing files of vendor bars, tick files for
`kline bars synth`): pyarrow's block size, and finding the physical line it could not take.

pyarrow names neither an overlong line nor bytes outside the encoding by line, and Python's
`csv` module stops at 131,072 characters a field; so once pyarrow has failed, the file is
scanned again in binary, a block at a time, to name the line.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

BLOCK_BYTES = 1 << 20
"""pyarrow's CSV block: a line longer than this cannot be parsed, and no real bar or tick is."""


def locate_bad_line(path: Path | str, encoding: str) -> tuple[int, str] | None:
    """The first physical line that pyarrow cannot take — longer than a block, or not in
    `encoding` — as (line number, reason); None when every line is fine."""
    number, carry = 1, b""
    with pa.input_stream(str(path), compression="detect") as stream:
        while True:
            chunk = stream.read(BLOCK_BYTES)
            lines = (carry + chunk).split(b"\n")
            carry = lines.pop() if chunk else b""
            for line in lines:
                if len(line) > BLOCK_BYTES:
                    return number, f"a line of {len(line):,} bytes (at most {BLOCK_BYTES:,})"
                try:
                    line.decode(encoding)
                except UnicodeDecodeError as exc:
                    return number, (f"byte {line[exc.start:exc.start + 1].hex()} at column "
                                    f"{exc.start + 1} is not {encoding}")
                number += 1
            if len(carry) > BLOCK_BYTES:
                return number, f"a line of more than {BLOCK_BYTES:,} bytes"
            if not chunk:
                return None
