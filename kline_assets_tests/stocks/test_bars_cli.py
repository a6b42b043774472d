"""`kline bars synth` and `kline bars query` as other tools script them: formats, columns,
exit codes, and nothing written when a tick file is malformed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from kline_assets.cli import cli
from kline_assets.resources.postgres import PostgresResource
from kline_assets.stocks import sessions
from kline_assets.stocks.tickfiles import OUTPUT
from kline_assets_tests.support.stocks import insert_bars, make_bars

DAY = "2025-10-09"


def tick_frame(symbols: int = 2, step_s: int = 30, seed: int = 5) -> pd.DataFrame:
    """Cumulative snapshots through a day, plus a lunch print and a duplicate."""
    rng = np.random.default_rng(seed)
    offsets = [pd.Timedelta("09:25:00")]
    for lo, hi in (("09:30:00", "11:30:00"), ("13:00:00", "15:00:00")):
        offsets += list(pd.timedelta_range(pd.Timedelta(lo) + pd.Timedelta(seconds=step_s),
                                           hi, freq=f"{step_s}s"))
    frames = []
    for k in range(symbols):
        n = len(offsets)
        price = np.round(10 + k + np.cumsum(rng.normal(0, 0.01, n)), 2)
        vol = np.cumsum(rng.integers(1, 50, n) * 100).astype(float)
        frames.append(pd.DataFrame({
            "symbol": f"{600000 + k:06d}.SH",
            "time": (pd.Timestamp(DAY) + pd.TimedeltaIndex(offsets)).strftime("%Y-%m-%d %H:%M:%S"),
            "price": price, "volume": vol, "amount": np.cumsum(np.diff(vol, prepend=0) * price),
        }))
    df = pd.concat(frames, ignore_index=True)
    extra = df.iloc[[3]].assign(time=f"{DAY} 12:00:00")
    return pd.concat([df, df.iloc[[5]], extra], ignore_index=True)


def run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_synth_csv(tmp_path: Path) -> None:
    src = tmp_path / "ticks.csv"
    tick_frame().to_csv(src, index=False)
    out = tmp_path / "bars.csv"
    result = run("bars", "synth", str(src), "--out", str(out), "--cumulative")
    assert result.exit_code == 0, result.output
    assert "1 duplicates dropped" in result.output and "lunch 1" in result.output
    bars = pd.read_csv(out)
    assert list(bars.columns) == list(OUTPUT)
    counts = bars.groupby(["symbol", "period"]).size().unstack()
    assert counts.loc["600000.SH"].tolist() == [240, 48, 16, 8, 4]
    assert bars.frame.str.endswith("+08:00").all()
    hourly = bars[(bars.period == 60) & (bars.symbol == "600000.SH")].frame.str[11:16]
    assert hourly.tolist() == ["10:30", "11:30", "14:00", "15:00"]
    ticks = tick_frame().drop_duplicates()
    last = ticks.groupby("symbol").volume.max()
    assert bars[bars.period == 1].groupby("symbol").volume.sum().to_dict() == last.to_dict()


def test_synth_parquet_matches_csv_and_options(tmp_path: Path) -> None:
    df = tick_frame()
    csv_src, pq_src = tmp_path / "t.csv", tmp_path / "t.parquet"
    df.to_csv(csv_src, index=False)
    # Parquet with real timestamps carrying +08:00, volume in lots.
    aware = df.assign(time=pd.to_datetime(df.time).dt.tz_localize("Asia/Shanghai"),
                      volume=df.volume / 100)
    pq.write_table(pa.Table.from_pandas(aware, preserve_index=False), pq_src)
    opts = ["--cumulative", "--periods", "1,60", "--profile", "tushare", "--fill"]
    assert run("bars", "synth", str(csv_src), "--out", str(tmp_path / "a.csv"), *opts
               ).exit_code == 0
    result = run("bars", "synth", str(pq_src), "--out", str(tmp_path / "b.parquet"), *opts,
                 "--volume-unit", "lots")
    assert result.exit_code == 0, result.output
    a = pd.read_csv(tmp_path / "a.csv")
    b = pq.read_table(tmp_path / "b.parquet").to_pandas()
    assert sorted(a.period.unique().tolist()) == [1, 60]
    assert (a[a.period == 1].groupby("symbol").size() == 241).all()
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


@pytest.mark.parametrize("body,line", [
    ("600000.SH,2025-10-09 09:30:03,abc,100,1000\n", 3),
    ("600000.SH,2025-10-09 25:99:00,10,100,1000\n", 3),
    ("600000.SH,2025-10-09 09:30:06,10,100\n", 3),
    (",2025-10-09 09:30:06,10,100,1000\n", 3),
    ("600000.sh,2025-10-09 09:30:06,10,100,1000\n", 3),
    ("X" * 1_000_000 + ",2025-10-09 09:30:06,10,100,1000\n", 3),
    ("600000.SH,2025-10-09 09:30:06," + "1" * 5_000_000 + ",100,1000\n", 3),
])
def test_malformed_csv_exits_2_and_writes_nothing(tmp_path: Path, body: str, line: int) -> None:
    src = tmp_path / "bad.csv"
    src.write_text("symbol,time,price,volume,amount\n"
                   "600000.SH,2025-10-09 09:30:03,10,100,1000\n" + body)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(cli, ["bars", "synth", str(src), "--out", str(out)])
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert f"{src}:{line}" in result.output
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [src]


def test_missing_column_and_bad_parquet(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("symbol,time,price,volume\n600000.SH,2025-10-09 09:30:03,10,100\n")
    result = CliRunner().invoke(cli, ["bars", "synth", str(src), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and f"{src}:1" in result.output and "amount" in result.output
    junk = tmp_path / "t.parquet"
    junk.write_bytes(b"not parquet")
    result = CliRunner().invoke(cli, ["bars", "synth", str(junk), "--out",
                                      str(tmp_path / "o.parquet")])
    assert result.exit_code == 2 and str(junk) in result.output
    assert not (tmp_path / "o.parquet").exists() and not (tmp_path / "o.csv").exists()


def test_query_vendor_history(postgres: PostgresResource, monkeypatch: pytest.MonkeyPatch,
                              redis_url: str) -> None:
    bars = make_bars(["600000.SH", "000001.SZ"], [DAY, "2025-10-10"])
    insert_bars(postgres, bars)
    monkeypatch.setenv("KLINE_PG_DSN", postgres.dsn)
    monkeypatch.setenv("KLINE_REDIS_URL", redis_url)  # no live bars there
    result = run("bars", "query", "600000.SH", "--period", "60", "--from", f"{DAY} 10:00",
                 "--to", "2025-10-10 14:00", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["frame"] for r in rows] == [
        f"{DAY}T10:30:00+08:00", f"{DAY}T11:30:00+08:00", f"{DAY}T14:00:00+08:00",
        f"{DAY}T15:00:00+08:00", "2025-10-10T10:30:00+08:00", "2025-10-10T11:30:00+08:00",
        "2025-10-10T14:00:00+08:00"]
    assert set(rows[0]) == {"symbol", "period", "frame", "open", "high", "low", "close",
                            "volume", "amount", "source"}
    assert {r["source"] for r in rows} == {"vendor"} and {r["period"] for r in rows} == {60}
    # A whole block, not the part of it inside the range: 09:31…10:30.
    mine = bars[(bars.code == "600000.SH") & (bars.time > f"{DAY} 09:30")
                & (bars.time <= f"{DAY} 10:30")]
    assert rows[0]["volume"] == pytest.approx(mine.volume.sum())
    assert rows[0]["open"] == pytest.approx(mine.open.iloc[0])
    assert rows[0]["high"] == pytest.approx(mine.high.max())
    assert rows[0]["close"] == pytest.approx(mine.close.iloc[-1])
    table = run("bars", "query", "000001.SZ", "--period", "1", "--from", f"{DAY} 09:31",
                "--to", f"{DAY} 09:35")
    assert table.exit_code == 0 and table.output.count("+08:00") == 5
    bad = CliRunner().invoke(cli, ["bars", "query", "X", "--from", "2025-10-09",
                                   "--to", "2025-10-09 10:00"])
    assert bad.exit_code == 2
    assert "calendar" not in result.stderr


def test_query_of_provisional_days_says_so_on_stderr(
    postgres: PostgresResource, monkeypatch: pytest.MonkeyPatch, redis_url: str,
) -> None:
    insert_bars(postgres, make_bars(["600000.SH"], ["2027-01-04"]))
    monkeypatch.setenv("KLINE_PG_DSN", postgres.dsn)
    monkeypatch.setenv("KLINE_REDIS_URL", redis_url)  # no live bars there
    monkeypatch.delenv("KLINE_XSHG_CLOSURES", raising=False)
    result = run("bars", "query", "600000.SH", "--period", "60", "--from", "2027-01-04 09:00",
                 "--to", "2027-01-04 15:00", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 4
    assert result.stderr.strip() == (
        f"calendar: provisional (closures file {sessions.DEFAULT_CLOSURES})")


def test_synth_refuses_absurd_values_as_the_stream_does(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("symbol,time,price,volume,amount\n"
                   "600000.SH,2025-10-09 10:00:01,10,100,1000\n"
                   "600000.SH,2025-10-09 10:00:02,10.5,1e300,1e300\n"
                   "600000.SH,2025-10-09 10:00:03,3000000,100,1000\n")
    out = tmp_path / "o.csv"
    result = CliRunner().invoke(cli, ["bars", "synth", str(src), "--out", str(out),
                                      "--periods", "1"])
    assert result.exit_code == 0, result.output
    assert "bad_price 1" in result.output and "bad_volume 1" in result.output, result.output
    bars = pd.read_csv(out)
    assert bars[["open", "high", "close", "volume"]].values.tolist() == [[10, 10, 10, 100]]


GBK = "浦发,2025-10-09 09:30:04,10,1,1".encode("gbk")


@pytest.mark.parametrize(("lines", "line", "says"), [
    ([b"600000.SH,2025-10-09 09:30:03,10,100,1000", GBK], 3, "byte c6 at column 1 is not utf-8"),
    ([GBK], 2, "byte c6 at column 1 is not utf-8"),
    ([b"600000.SH,2025-10-09 09:30:03," + b"1" * 5_000_000 + b",100,1000"], 2,
     "a line of more than 1,048,576 bytes"),
    ([b"600000.SH,2025-10-09 09:30:03,10,100"], 2, "expected 5 fields, got 4"),
])
def test_unreadable_lines_are_one_error_naming_the_right_line(
    tmp_path: Path, lines: list[bytes], line: int, says: str,
) -> None:
    src = tmp_path / "bad.csv"
    src.write_bytes(b"\n".join([b"symbol,time,price,volume,amount", *lines]) + b"\n")
    result = CliRunner().invoke(cli, ["bars", "synth", str(src), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [f"error: {src}:{line}: {says}"], result.stderr
    assert "Traceback" not in result.output
