"""The rules every read argument passes before it reaches SQL: run ids, pages, times,
orderings, columns, scopes and ids — one place, so the library, the HTTP service and the CLI
refuse the same things with the same words.

Values are bound as ClickHouse server-side parameters (`{name:Type}`) by the callers; what
ends up formatted into SQL (column and order names) is only ever a name from a whitelist.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from itertools import repeat
from typing import Any
from zoneinfo import ZoneInfo

from kline_assets.kernels.align import BUCKET_SECONDS
from kline_assets.kernels.feature_names import FEATURE_COLUMNS
from kline_assets.lib.errors import InvalidQueryError, InvalidRunIdError
from kline_assets.lib.settings import PRICE_TZ
from kline_assets.prices.partitions import validate_run_id

DEFAULT_LIMIT = 100
MAX_LIMIT = 5000
FINAL_AFTER = timedelta(minutes=5)  # a bucket is final once it ended this long ago
TZ = ZoneInfo(PRICE_TZ)

STAT_COLUMNS = ("mean", "median", "std", "shop_count", "dispersion", "n_models")
FEATURES_COLUMNS: tuple[str, ...] = (
    "run_id", "bucket", "scope", *STAT_COLUMNS, *FEATURE_COLUMNS, "inserted_at")
FEATURE_VALUE_NAMES: tuple[str, ...] = (*STAT_COLUMNS, *FEATURE_COLUMNS)
"""What the long format (`query_feature_values`) can unpivot: every numeric column."""
PRICE_ALIGNED_COLUMNS: tuple[str, ...] = (
    "run_id", "bucket", "shop_id", "iphone_id", "price_new", "price_a", "price_b",
    "alignment_diff_sec", "record_time", "inserted_at")

SCOPE = re.compile(r"(iphone:[0-9]{1,10}|cohort:[A-Za-z0-9][A-Za-z0-9_.-]{0,63})")
SCOPE_KIND = re.compile(r"(iphone|cohort):\*")

LIBRARY_HINT = "(prefix '-' for descending)"
HTTP_HINT = "(prefix '-' for descending, comma-separated)"


def run_id_arg(run_id: str) -> str:
    try:
        return validate_run_id(run_id)
    except InvalidRunIdError as exc:
        raise InvalidQueryError(str(exc)) from exc


def page_args(limit: int, offset: int) -> tuple[int, int]:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidQueryError(f"limit must be an integer in [1, {MAX_LIMIT}], got {limit!r}")
    if not isinstance(offset, int) or offset < 0:
        raise InvalidQueryError(f"offset must be an integer ≥ 0, got {offset!r}")
    return limit, offset


def parse_time(value: datetime | str | None, what: str) -> int | None:
    """A bucket bound as epoch seconds: an aware datetime or ISO-8601 text; a time without an
    offset is Asia/Tokyo wall clock (the buckets' own zone); a date alone is its midnight."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise InvalidQueryError(
                f"{what}: {value!r} is not an ISO-8601 date or time "
                "(e.g. 2025-10-01, 2025-10-01T09:30 or 2025-10-01T09:30:00+09:00)") from exc
    if not isinstance(value, datetime):
        raise InvalidQueryError(f"{what}: expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=TZ)
    return int(value.timestamp())


def parse_ordering(order: str | Sequence[str] | None, allowed: Mapping[str, str] | Iterable[str],
                   default: str, hint: str = LIBRARY_HINT) -> list[tuple[str, bool]]:
    """`-bucket,scope` → [(bucket, descending), (scope, ascending)], each name translated
    through `allowed` when it maps (the HTTP names onto the columns); the first mention of a
    name wins. A name outside `allowed` is refused, naming the choices."""
    names = allowed if isinstance(allowed, Mapping) else {n: n for n in allowed}
    if order is None or order == "" or order == []:
        order = default
    items = order.split(",") if isinstance(order, str) else list(order)
    terms: list[tuple[str, bool]] = []
    for item in items:
        item = item.strip()
        name = item.removeprefix("-")
        if name not in names:
            raise InvalidQueryError(
                f"cannot order by {item!r}; choose from {', '.join(names)} {hint}")
        terms.append((names[name], item.startswith("-")))
    return terms


# Orderings that are expressions rather than columns: the number of an iPhone scope, so that
# iphone:9 sorts before iphone:10 (cohort scopes sort as 0, then by the scope tie-breaker).
_ORDER_EXPRESSIONS = {"scope_number": "toUInt32OrZero(substring(scope, 8))"}


def order_by(order: str | Sequence[str] | None, allowed: Iterable[str], key: Sequence[str],
              default: str) -> str:
    """`-bucket,scope` → `bucket DESC, scope ASC, <key>`: the key breaks ties, so pages never
    overlap."""
    parts, seen = [], set()
    for name, descending in parse_ordering(order, tuple(allowed), default):
        if name in seen:
            continue
        seen.add(name)
        parts.append(f"{_ORDER_EXPRESSIONS.get(name, name)} {'DESC' if descending else 'ASC'}")
    parts += [f"{k} ASC" for k in key if k not in seen]
    return ", ".join(parts)


def columns_arg(columns: Sequence[str] | None, allowed: Sequence[str]) -> list[str]:
    if not columns:
        return list(allowed)
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise InvalidQueryError(
            f"unknown column(s) {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(allowed)}")
    return list(dict.fromkeys(columns))


def is_kind(scope: object) -> bool:
    """Whether `scope` names every scope of a kind (`iphone:*`, `cohort:*`)."""
    return isinstance(scope, str) and SCOPE_KIND.fullmatch(scope) is not None


def scope_filter(scope: str | Sequence[str] | None, params: dict[str, Any]) -> str:
    """An exact scope, several, or every scope of a kind (`iphone:*`, `cohort:*`)."""
    if scope is None or scope == "" or scope == []:
        return ""
    if is_kind(scope):
        params["scope_prefix"] = scope[:-1]
        return " AND startsWith(scope, {scope_prefix:String})"
    scopes = [scope] if isinstance(scope, str) else list(scope)
    bad = [s for s in scopes if not isinstance(s, str) or not SCOPE.fullmatch(s)]
    if bad:
        raise InvalidQueryError(
            f"invalid scope {bad[0]!r}: expected iphone:<id>, cohort:<slug>, iphone:* or cohort:*")
    params["scopes"] = scopes
    return " AND scope IN {scopes:Array(String)}"


def range_filter(bucket_gte, bucket_lte, params: dict[str, Any]) -> str:
    where = ""
    gte, lte = parse_time(bucket_gte, "bucket__gte"), parse_time(bucket_lte, "bucket__lte")
    if gte is not None:
        params["gte"] = gte
        where += " AND bucket >= toDateTime({gte:Int64})"
    if lte is not None:
        params["lte"] = lte
        where += " AND bucket <= toDateTime({lte:Int64})"
    return where


def ids_arg(values: Iterable[int] | None, what: str) -> list[int] | None:
    if values is None:
        return None
    try:
        ids = [int(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise InvalidQueryError(f"{what}: expected integer ids, got {values!r}") from exc
    if any(not 0 <= i < 2**32 for i in ids):
        raise InvalidQueryError(f"{what}: ids must be in [0, 2^32)")
    return ids


def iso(epoch: int | None) -> str | None:
    """Epoch seconds → ISO-8601 in Asia/Tokyo with its offset: the one way a price time leaves
    the read side (select times as `toUnixTimestamp(…)`, so no session time zone shifts them)."""
    return None if epoch is None else datetime.fromtimestamp(epoch, TZ).isoformat()


def final_at(bucket: str | datetime) -> datetime:
    """When a bucket becomes final: its window closed FINAL_AFTER ago (later data can no
    longer land in it)."""
    start = datetime.fromisoformat(bucket) if isinstance(bucket, str) else bucket
    return start + timedelta(seconds=BUCKET_SECONDS) + FINAL_AFTER


def is_final(bucket: str | datetime, now: datetime | None = None) -> bool:
    return final_at(bucket) < (now or datetime.now(TZ))


class Finality:
    """`is_final(bucket, now)` for the ISO strings `iso` makes, as one string comparison
    each: `iso` writes every time at one length, so two with the same offset compare as the
    times do (a page of 100 rows spent more on parsing them than on anything else)."""

    __slots__ = ("cutoff", "now", "offset", "size")

    def __init__(self, now: datetime) -> None:
        # whole seconds: b < t exactly when b < ceil(t)
        cutoff = iso(math.ceil((now - timedelta(seconds=BUCKET_SECONDS) - FINAL_AFTER
                                ).timestamp()))
        assert cutoff is not None
        self.now, self.cutoff, self.size, self.offset = now, cutoff, len(cutoff), cutoff[19:]

    def __call__(self, bucket: str) -> bool:
        if len(bucket) == self.size and bucket[19:] == self.offset:
            return bucket < self.cutoff
        return is_final(bucket, self.now)

    def many(self, buckets: Sequence[str]) -> list[bool]:
        """Each bucket's finality; a page whose times all share the cutoff's form (every page
        of `iso`'s times since 1952) is compared without a Python call per row."""
        if set(map(len, buckets)) <= {self.size} and \
                all(map(str.endswith, buckets, repeat(self.offset))):
            return list(map(self.cutoff.__gt__, buckets))
        return [self(b) for b in buckets]


def finality(now: datetime) -> Finality:
    """The finality of buckets at `now`."""
    return Finality(now)
