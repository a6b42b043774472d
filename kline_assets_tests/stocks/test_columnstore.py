"""The TimescaleDB columnstore of the 1-minute tables: the statements as text, the decisions
`kline init` takes on a TimescaleDB database (a fake connection answering as one would — no
TimescaleDB runs here), and the plain path, on the real PostgreSQL, sending nothing."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pytest

from kline_assets.lib.errors import KlineError
from kline_assets.lib.settings import SQL_DIR
from kline_assets.stocks.columnstore import apply_columnstore, check_interval, statement
from kline_assets_tests.support.stocks import read_bars, run_months

SYNTH_DDL = (SQL_DIR / "postgres" / "stock_1min_synth.sql").read_text()


def text(section: str, table: str, age: str | None = None) -> str:
    return " ".join(statement(section, table, age).as_string(None).split())


def test_the_statements_segment_by_code_order_by_time_and_take_the_age():
    assert text("enable", "stock_1min_qfq") == (
        'ALTER TABLE "stock_1min_qfq" SET ( timescaledb.enable_columnstore = true, '
        "timescaledb.segmentby = 'code', timescaledb.orderby = 'time' );")
    assert text("add_policy", "stock_1min_synth", "7 days") == (
        "CALL add_columnstore_policy('stock_1min_synth', after => '7 days'::interval, "
        "if_not_exists => true);")
    assert text("remove_policy", "stock_1min_qfq") == (
        "CALL remove_columnstore_policy('stock_1min_qfq', if_exists => true);")
    assert text("add_retention", "stock_1min_synth", "2 years") == (
        "SELECT add_retention_policy('stock_1min_synth', drop_after => '2 years'::interval, "
        "if_not_exists => true);")
    assert "proc_name = 'policy_compression' AND hypertable_name = 'stock_1min_qfq'" in text(
        "policy_age", "stock_1min_qfq")


@pytest.mark.parametrize(("given", "normal"), [("7 days", "7 days"), (" 1 Month ", "1 month"),
                                               ("2 years", "2 years"), ("12hours", "12 hours")])
def test_ages_are_normalised(given, normal):
    assert check_interval(given, "X") == normal


@pytest.mark.parametrize("bad", ["", "0 days", "7", "1 fortnight", "7 days'; DROP TABLE x"])
def test_a_bad_age_is_refused_naming_the_variable(bad):
    with pytest.raises(KlineError, match="KLINE_TS_COMPRESS_AFTER"):
        apply_columnstore(FakeTimescale(), compress_after=bad)


@dataclass
class FakeTimescale:
    """Answers the catalogue questions as a TimescaleDB 2.28 database would, from `state`;
    records every statement. Only the decisions are tested with it, not TimescaleDB."""

    enabled: set[str] = field(default_factory=set)
    policies: dict[str, str] = field(default_factory=dict)
    retention: str | None = None
    sent: list[str] = field(default_factory=list)

    def execute(self, query, params=None):
        q = " ".join((query if isinstance(query, str) else query.as_string(None)).split())
        self.sent.append(q)
        return _Rows(self._answer(q, params))

    def _answer(self, q: str, params) -> list[tuple]:
        if "FROM pg_extension" in q:
            return [(1,)]
        if "timescaledb_information.hypertables h" in q:
            return [(1,)]  # both tables are hypertables already
        if "compression_enabled" in q:
            return [(any(f"'{t}'" in q for t in self.enabled),)]
        if "'policy_compression'" in q:
            return [(v,) for t, v in self.policies.items() if f"'{t}'" in q]
        if "'policy_retention'" in q:
            return [(self.retention,)] if self.retention else []
        if q.startswith("SELECT '") and "::interval = '" in q:
            a, b = (part.split("'")[1] for part in q.split("::interval = "))
            return [(a.replace("1 week", "7 days") == b,)]
        return []


@dataclass
class _Rows:
    rows: list[tuple]

    def fetchone(self):
        return self.rows[0] if self.rows else None


def test_a_first_init_enables_the_columnstore_and_adds_the_policies():
    conn = FakeTimescale()
    report = apply_columnstore(conn, "7 days", "2 years")
    changes = [q for q in conn.sent if q.startswith(("ALTER", "CALL", "SELECT add", "SELECT rem"))]
    assert changes == [
        text("enable", "stock_1min_qfq"),
        text("remove_policy", "stock_1min_qfq"), text("add_policy", "stock_1min_qfq", "7 days"),
        text("enable", "stock_1min_synth"),
        text("remove_policy", "stock_1min_synth"),
        text("add_policy", "stock_1min_synth", "7 days"),
        text("remove_retention", "stock_1min_synth"),
        text("add_retention", "stock_1min_synth", "2 years"),
    ]
    assert "older than 2 years dropped" in report.line()


def test_a_second_init_with_the_same_settings_changes_nothing():
    conn = FakeTimescale(enabled={"stock_1min_qfq", "stock_1min_synth"},
                         policies={"stock_1min_qfq": "1 week", "stock_1min_synth": "7 days"},
                         retention="2 years")
    report = apply_columnstore(conn, "7 days", "2 years")
    assert not [q for q in conn.sent if q.startswith(("ALTER", "CALL", "SELECT add",
                                                      "SELECT rem"))]
    assert report.changed == [] and "already as configured" in report.line()


def test_a_new_age_replaces_the_policy_and_no_retention_removes_it():
    conn = FakeTimescale(enabled={"stock_1min_qfq", "stock_1min_synth"},
                         policies={"stock_1min_qfq": "7 days", "stock_1min_synth": "7 days"},
                         retention="2 years")
    report = apply_columnstore(conn, "30 days", "")
    assert report.changed == ["stock_1min_qfq compressed after 30 days",
                              "stock_1min_synth compressed after 30 days",
                              "stock_1min_synth retention removed"]
    assert not any(q.startswith("ALTER") for q in conn.sent)  # enabled once, never re-altered


def test_on_plain_postgresql_nothing_but_the_extension_question_is_sent(postgres):
    sent: list[str] = []
    with postgres.connect() as conn:
        class Recording:
            def execute(self, query, params=None):
                sent.append(query if isinstance(query, str) else query.as_string(conn))
                return conn.execute(query, params)

        report = apply_columnstore(Recording(), "7 days", "2 years")
    assert not report.timescaledb
    assert sent == ["SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"]
    assert report.line().startswith("TimescaleDB not installed")


# ---------------------------------------------------------------- on a real TimescaleDB
# Only where KLINE_TIMESCALE_DSN points at a server with the extension (skipped otherwise, as
# in this project's own runs): the columnstore and policies are created once, and a month
# reloaded on compressed chunks ends with the same rows as the first load.


@pytest.mark.timescale
def test_on_timescaledb_a_month_reloads_on_compressed_chunks(
        timescale, instance, landed) -> None:
    root, _ = landed
    run_months(timescale, instance, root, ["2024-01-01"])
    with timescale.connect() as conn:
        conn.execute(SYNTH_DDL)
        first = apply_columnstore(conn, "7 days", "2 years")
    with timescale.connect() as conn:
        again = apply_columnstore(conn, "1 week", "2 years")
        jobs = conn.execute(
            "SELECT hypertable_name, proc_name, config ->> 'compress_after', "
            "config ->> 'drop_after' FROM timescaledb_information.jobs "
            "WHERE proc_name IN ('policy_compression', 'policy_retention') "
            "ORDER BY hypertable_name, proc_name").fetchall()
        enabled = conn.execute(
            "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables "
            "WHERE hypertable_name LIKE 'stock_1min_%' ORDER BY 1").fetchall()
    assert "columnstore enabled on stock_1min_qfq" in first.changed
    assert again.changed == []
    assert [(t, p) for t, p, _, _ in jobs] == [
        ("stock_1min_qfq", "policy_compression"), ("stock_1min_synth", "policy_compression"),
        ("stock_1min_synth", "policy_retention")]
    assert enabled == [("stock_1min_qfq", True), ("stock_1min_synth", True)]
    before = read_bars(timescale)
    with timescale.connect() as conn:  # what the policy does to chunks older than 7 days
        conn.execute("SELECT compress_chunk(c, if_not_compressed => true) "
                     "FROM show_chunks('stock_1min_qfq') c")
    run_months(timescale, instance, root, ["2024-01-01"])  # DELETE + COPY on compressed chunks
    pd.testing.assert_frame_equal(read_bars(timescale), before)
