"""Addresses of stores for messages: every credential form masked, in one place.

Errors must say which store failed and where, and never print a password — whether it came as
`user:password@host`, `?password=…`, or libpq's `password=…` keyword form.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_KEYS = {"password", "pass", "pwd", "secret", "token", "sslpassword"}
_KEYWORD_SECRET = re.compile(r"\b(password|sslpassword)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", re.I)


def redact(dsn: str) -> str:
    """The DSN with every password replaced by ***; other parts kept for diagnosis."""
    if "://" not in dsn:
        return _KEYWORD_SECRET.sub(lambda m: f"{m.group(1)}={MASK}", dsn)
    try:
        parts = urlsplit(dsn)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{user}@{host}"
        query = urlencode(
            [(k, MASK if k.lower() in _SECRET_KEYS else v) for k, v in parse_qsl(parts.query)],
            safe="*",
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparseable address>"


def host_port(dsn: str, default_port: int) -> str:
    """scheme://host:port of a URL DSN, or a clear marker when the port is malformed."""
    parts = urlsplit(dsn)
    try:
        port = parts.port or default_port
    except ValueError:
        return f"{parts.scheme}://{parts.hostname}:<invalid port>"
    return f"{parts.scheme}://{parts.hostname}:{port}"
