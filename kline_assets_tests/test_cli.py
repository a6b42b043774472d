"""What a user sees from the `kline` command for bad input and busy stores: one line saying
what is wrong and where, exit 2, never a traceback or a password."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from kline_assets.cli import cli
from kline_assets.resources import ClickHouseResource

KLINE = str(Path(sys.executable).parent / "kline")


def kline(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KLINE, *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


def test_a_month_with_trailing_characters_is_refused():
    result = kline("stocks", "refresh", "--from", "2025-10abc",
                   KLINE_PG_DSN="postgresql://postgres@127.0.0.1:1/unused")
    assert_one_line_error(result, "2025-10abc")


def test_a_reversed_month_range_says_which_bound_is_wrong():
    result = kline("stocks", "refresh", "--from", "2025-11", "--to", "2025-10",
                   KLINE_PG_DSN="postgresql://postgres@127.0.0.1:1/unused")
    assert_one_line_error(result, "--from")


def test_a_malformed_clickhouse_port_is_one_line(pg_dsn):
    result = kline("init", KLINE_PG_DSN=pg_dsn,
                   KLINE_CLICKHOUSE_DSN="http://default:secretpw@127.0.0.1:81x23/kline")
    assert_one_line_error(result, "malformed ClickHouse DSN", "KLINE_CLICKHOUSE_DSN")
    assert "secretpw" not in result.stderr


def test_an_unreachable_postgres_names_its_address_without_the_password():
    result = kline("init", KLINE_PG_DSN="postgresql://kline:secretpw@127.0.0.1:1/prices")
    assert_one_line_error(result, "127.0.0.1:1")
    assert "secretpw" not in result.stderr


def test_a_dsn_with_a_space_in_the_password_is_one_line_without_it():
    result = kline("bars", "query", "600000.SH", "--period", "5", "--from", "2025-10-09 09:30",
                   "--to", "2025-10-09 15:00",
                   KLINE_PG_DSN="postgresql://postgres:sec ret@127.0.0.1:5432/x")
    assert_one_line_error(result)
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "malformed PostgreSQL DSN postgresql://postgres:***@127.0.0.1:5432/x" in result.stderr
    assert "sec ret" not in result.stdout + result.stderr


@pytest.mark.parametrize("url", ["http://127.0.0.1:1/0", "redis://127.0.0.1:1/notadb"])
def test_a_malformed_redis_url_is_one_line(url):
    result = kline("ticks", "consume", "--until-idle", "1", KLINE_REDIS_URL=url)
    assert_one_line_error(result)
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert f"malformed Redis URL {url} (KLINE_REDIS_URL)" in result.stderr


def test_a_command_waiting_for_the_embedded_engine_says_who_holds_it(pg_dsn, tmp_path):
    dsn = f"chdb://{tmp_path / 'store'}"
    holder = ClickHouseResource(dsn=dsn, database=f"t_{uuid.uuid4().hex[:8]}")
    release, held = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.client():
            held.set()
            release.wait(120)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(60)
        proc = subprocess.Popen([KLINE, "init"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, "KLINE_PG_DSN": pg_dsn,
                                                "KLINE_CLICKHOUSE_DSN": dsn})
        assert proc.stderr is not None
        waiting = proc.stderr.readline()  # blocks until the command announces its wait
        release.set()
        out, err = proc.communicate(timeout=120)
    finally:
        release.set()
        thread.join(60)
    assert "waiting for embedded ClickHouse" in waiting
    assert f"held by pid {os.getpid()}" in waiting
    assert proc.returncode == 0, err
    assert "tables ready" in out
    assert "features ok" in out
    assert "TimescaleDB not installed" in out  # the plain path: no columnstore


@pytest.mark.parametrize("args", [["runs", "create", "Bad-Name"], ["runs", "create", "abc\n"]])
def test_a_malformed_run_id_is_refused_before_anything_is_written(args, tmp_path):
    result = kline(*args, DAGSTER_HOME=str(tmp_path))
    assert_one_line_error(result, "run id")


# ---------------------------------------------------------------- one convention, every command

UNREACHABLE_PG = "postgresql://postgres@127.0.0.1:1/unused"  # port 1: never a store


def _files(tmp: Path) -> dict[str, str]:
    short = tmp / "short.csv"
    short.write_text("symbol,time,price,volume,amount\n600000.SH,2025-10-09 09:30:03,10,100\n")
    return {"short": str(short), "out": str(tmp / "out.csv"), "missing": str(tmp / "nope.csv")}


@pytest.mark.parametrize(("args", "env", "expected"), [
    (["bars", "synth", "{short}", "--out", "{out}"], {}, "short.csv:2: expected 5 fields, got 4"),
    (["bars", "synth", "{missing}", "--out", "{out}"], {}, "does not exist"),
    (["bars", "synth", "{short}", "--out", "{out}", "--periods", "7"], {}, "7"),
    (["bars", "query", "600000.SH", "--period", "7", "--from", "2025-10-09 09:30", "--to",
      "2025-10-09 15:00"], {}, "'7' is not one of"),
    (["bars", "query", "600000.SH", "--from", "2025-10-09 09:30", "--to", "2025-10-09 15:00"],
     {"KLINE_PG_DSN": UNREACHABLE_PG}, "127.0.0.1:1"),
    (["ticks", "handover", "--date", "2025-13-01"], {}, "expected YYYY-MM-DD"),
    (["ticks", "publish", "{missing}"], {}, "does not exist"),
    (["ticks", "consume", "--until-idle", "1"], {"KLINE_REDIS_URL": "http://127.0.0.1:1/0"},
     "malformed Redis URL"),
    (["runs", "create", "Bad|Id"], {}, "malformed run id"),
    (["stocks", "refresh", "--from", "2025-10abc"], {"KLINE_PG_DSN": UNREACHABLE_PG},
     "2025-10abc"),
    (["pipeline", "--run-id", "x", "--from", "2025-11", "--to", "2025-10"], {},
     "--from is after --to"),
    (["demo", "--shops", "0"], {"KLINE_PG_DSN": UNREACHABLE_PG}, "shops must be in"),
    (["nosuchcommand"], {}, "No such command"),
])
def test_every_deliberate_error_is_one_line_and_exit_2(args, env, expected, tmp_path,
                                                       monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    files = _files(tmp_path)
    result = CliRunner().invoke(cli, [a.format(**files) for a in args], env=env)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert not Path(files["out"]).exists()
