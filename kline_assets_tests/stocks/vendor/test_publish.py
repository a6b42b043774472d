"""publish-vendor's XADD commands built in Arrow add the entries the Lua script adds, whatever
the lines' shape."""

from __future__ import annotations

import pytest
import redis

from kline_assets.stocks.vendor.codec import PUBLISH
from kline_assets.stocks.vendor.publish import publish_lines

BAR = b"600000.SH\t1\t2025-10-09T09:31:00\t10.5\t10.6\t10.4\t10.55\t1200\t12660"


def _entries(client, stream: str) -> list[dict]:
    return [fields for _, fields in client.xrange(stream)]


@pytest.mark.parametrize("lines", [
    [BAR + b"\t", BAR + "\t浦发银行".encode(), BAR + b"\t"],  # as encode() writes them
    [BAR] * 3,                                                # no name column
    [b"a\tb\t\tc\td"] * 2,                                    # fewer fields, one empty
    [BAR + b"\tname\textra\tmore"] * 2,                       # beyond name: left out
    [BAR + b"\t", b"a\tb"],                                   # ragged: the script's way
    [b"a\tb\r\tc", b"a\tb\tc"],                               # a carriage return
    [b'"a\tb"\t"c'] * 2,                                      # quotes are plain bytes
    [b""],
], ids=["encoded", "nine", "five", "extra", "ragged", "cr", "quotes", "empty"])
def test_the_same_entries_as_the_script(redis_client, lines):
    publish_lines(redis_client, "t:pub:a", lines, chunk=2)
    script = redis_client.register_script(PUBLISH)
    for lo in range(0, len(lines), 2):
        script(keys=["t:pub:b"], args=lines[lo:lo + 2])
    got, want = _entries(redis_client, "t:pub:a"), _entries(redis_client, "t:pub:b")
    assert got == want and len(got) == len(lines)


def test_an_error_reply_is_raised_after_the_chunk(redis_client):
    redis_client.set("t:pub:str", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        publish_lines(redis_client, "t:pub:str", [BAR + b"\t"] * 3)
    publish_lines(redis_client, "t:pub:ok", [BAR + b"\t"] * 3)  # the next call goes on
    assert redis_client.xlen("t:pub:ok") == 3
