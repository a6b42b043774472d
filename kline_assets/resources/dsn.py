"""Addresses of stores: parsed and validated before any driver sees them, and shown in
messages with every credential form masked, in one place.

Errors must say which store failed and where, and never print a password — whether it came as
`user:password@host`, `?password=…`, or libpq's `password=…` keyword form. Drivers quote the
text they could not parse in their own messages (psycopg: `unexpected spaces found in "sec
ret"`), so a DSN reaches a driver only once `check_postgres_dsn` / `check_url` accepted it.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from kline_assets.lib.errors import MalformedDsnError

MASK = "***"
_SECRET_KEYS = {"password", "pass", "pwd", "secret", "token", "sslpassword"}
# A keyword value runs to the next `key=` (a malformed, unquoted value may hold spaces).
_KEYWORD_SECRET = re.compile(
    r"\b(password|sslpassword)\s*=\s*('(?:[^'\\]|\\.)*'|\S+(?:\s+(?![\w.]+\s*=)\S+)*)", re.I)
_QUOTED = re.compile(r'"([^"]*)"')
_PUNCTUATION = re.compile(r"[^\w\s]+")  # a quoted '=' or ']' says what was expected
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]")
POSTGRES_SCHEMES = ("postgresql", "postgres")
REDIS_SCHEMES = ("redis", "rediss", "unix")


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


# --------------------------------------------------------------------------- validation


def malformed(store: str, variable: str, dsn: str, reason: str) -> MalformedDsnError:
    """The one-line error of a DSN that is refused: the variable, the masked DSN, why."""
    shown = redact(dsn)
    noun = "URL" if store == "Redis" else "DSN"  # what each store's documentation calls it
    return MalformedDsnError(f"malformed {store} {noun} {shown} ({variable}): {reason}",
                             store=store, address=shown)


def _check_port(text: str | None, store: str, variable: str, dsn: str) -> None:
    if text in (None, ""):
        return
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise malformed(store, variable, dsn, f"port {text!r} is not a number in 1…65535")


def check_url(dsn: str, *, store: str, variable: str, schemes: tuple[str, ...],
              host: bool = True) -> SplitResult:
    """A URL DSN split, once it has one of `schemes`, no whitespace or control characters
    (a space must be written %20) and, with `host`, a host and a port in 1…65535; else
    MalformedDsnError. (libpq URLs may name several hosts or none, a Unix socket: their
    hosts and ports are checked on libpq's own parse instead.)"""
    if _UNSAFE.search(dsn):
        raise malformed(store, variable, dsn, "spaces and control characters must be "
                        "percent-encoded (a space is %20)")
    try:
        parts = urlsplit(dsn)
    except ValueError as exc:
        raise malformed(store, variable, dsn, _masked_reason(str(exc))) from None
    if parts.scheme.lower() not in schemes:
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise malformed(store, variable, dsn,
                        f"scheme {parts.scheme + '://' if parts.scheme else 'missing'}, "
                        f"expected {wanted}")
    if not host:
        return parts
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if not parts.hostname and not netloc.startswith("["):
        raise malformed(store, variable, dsn, "no host")
    host_port = netloc.rsplit("]", 1)[-1]
    _check_port(host_port.split(":", 1)[1] if ":" in host_port else None, store, variable,
                dsn)
    return parts


def _masked_reason(text: str) -> str:
    """A parser's message with every quoted fragment masked (it may be a password), on one
    line."""
    first = text.strip().splitlines()[0] if text.strip() else "cannot be parsed"
    return _QUOTED.sub(lambda m: m.group(0) if _PUNCTUATION.fullmatch(m.group(1))
                       else f'"{MASK}"', first)


def check_postgres_dsn(dsn: str, variable: str = "KLINE_PG_DSN") -> dict[str, str]:
    """libpq's fields of a PostgreSQL DSN (URL or `key=value` form), parsed without
    connecting and checked (ports in 1…65535); MalformedDsnError otherwise, never the
    driver's message with the password in it."""
    import psycopg

    store = "PostgreSQL"
    if "://" in dsn:
        check_url(dsn, store=store, variable=variable, schemes=POSTGRES_SCHEMES, host=False)
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise malformed(store, variable, dsn, _masked_reason(str(exc))) from None
    for port in str(info.get("port") or "").split(","):
        _check_port(port.strip(), store, variable, dsn)
    return {k: str(v) for k, v in info.items()}


def check_redis_url(url: str, variable: str = "KLINE_REDIS_URL") -> int:
    """The database number of a Redis URL (`redis://host:port/N`, `rediss://…`,
    `unix:///path?db=N`), once the URL is well formed; MalformedDsnError otherwise. redis-py
    would take `…/notadb` as database 0 without a word — today's bars written where nobody
    looks — and answer `http://…` with a traceback."""
    store = "Redis"
    parts = check_url(url, store=store, variable=variable, schemes=REDIS_SCHEMES,
                      host=not url.lower().startswith("unix:"))
    db_texts = [v for k, v in parse_qsl(parts.query) if k.lower() == "db"]
    if parts.scheme.lower() != "unix" and parts.path not in ("", "/"):
        db_texts.insert(0, parts.path[1:])
    if len(db_texts) > 1:
        raise malformed(store, variable, url, "the database is given twice")
    text = db_texts[0] if db_texts else "0"
    if not text.isdigit():
        raise malformed(store, variable, url, f"database {text!r} is not a number "
                        "(redis://host:port/N)")
    return int(text)
