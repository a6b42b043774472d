"""stock_1min: landing files → one month of stock_1min_qfq, atomically and without surprises."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    ExecuteInProcessResult,
    materialize,
)

from kline_assets.lib.months import MonthWindow
from kline_assets.resources.postgres import PostgresResource
from kline_assets.stocks import STOCK_TABLE
from kline_assets.stocks.assets import stock_1min
from kline_assets.stocks.landing import ReadOptions, load_month, month_of_path
from kline_assets_tests.support.stocks import (
    LANDING,
    landing_config,
    make_bars,
    read_bars,
    stock_resources,
    write_csv,
    write_parquet,
)

JAN = "2024-01-01"


def load(
    postgres: PostgresResource, instance: DagsterInstance, root: Path, key: str = JAN,
    **config: object,
) -> ExecuteInProcessResult:
    return materialize(
        [stock_1min], partition_key=key, instance=instance, resources=stock_resources(postgres),
        run_config=landing_config(root, **config), raise_on_error=False,
    )


def metadata(result: ExecuteInProcessResult) -> dict[str, object]:
    event = result.asset_materializations_for_node("stock_1min")[0]
    return {k: v.value for k, v in event.metadata.items()}


def failure(result: ExecuteInProcessResult) -> str:
    assert not result.success
    failed = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    error, messages = failed[0].step_failure_data.error, []
    while error is not None:  # an IO manager's error arrives as the cause of Dagster's
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


def frame(rows: list[tuple]) -> pd.DataFrame:
    bars = pd.DataFrame(rows, columns=LANDING)
    bars["time"] = pd.to_datetime(bars["time"])
    return bars


def bar(time: str, code: str = "600000.SH", close: float = 10.0, volume: float = 100.0) -> tuple:
    return (time, code, "浦发银行", close, close + 0.1, close - 0.1, close, volume, volume * close)


@pytest.mark.parametrize(
    ("path", "month"),
    [
        ("2024-03/600000.SH.csv", "2024-03"),
        ("daily/20240131.csv", "2024-01"),
        ("200012.SZ_2024_02.parquet", "2024-02"),
        ("2023-12/2024-01-02.csv", "2024-01"),  # the last token wins
        ("600000.SH.csv", None),  # undated: read for every month
    ],
)
def test_files_are_matched_to_months_by_the_date_in_their_path(path: str, month: str) -> None:
    assert month_of_path(path) == month


def test_csv_with_vendor_headers_and_parquet_load_into_the_month(
    postgres: PostgresResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    bars = make_bars(["600000.SH", "000001.SZ"], ["2024-01-02", "2024-01-03"])
    vendor = {"time": "trade_time", "volume": "vol"}
    write_csv(bars[bars["code"] == "600000.SH"], tmp_path / "2024-01" / "sh.csv", rename=vendor)
    write_parquet(bars[bars["code"] == "000001.SZ"], tmp_path / "2024-01" / "sz.parquet")
    write_parquet(make_bars(["600000.SH"], ["2024-02-01"]), tmp_path / "2024-02" / "x.parquet")
    undated = make_bars(["688981.SH"], ["2023-12-29", "2024-01-04"])  # spans two months
    write_csv(undated, tmp_path / "star.csv")

    result = load(postgres, instance, tmp_path, column_map={"trade_time": "time", "vol": "volume"},
                  workers=2)

    assert result.success
    loaded = read_bars(postgres)
    expected = pd.concat([bars, undated[undated["time"] >= "2024-01-01"]])
    expected = expected.sort_values(["code", "time"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(loaded, expected, check_dtype=False, rtol=1e-15)
    meta = metadata(result)
    assert meta["rows_loaded"] == len(expected) == meta["dagster/row_count"]
    assert meta["files"] == 3 and meta["codes"] == 3 and meta["path"] == "plain"


def test_bars_outside_sessions_are_rejected_and_counted_with_the_file(
    postgres: PostgresResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    stamps = ["09:29:00", "09:30:00", "11:30:00", "11:30:30", "12:00:00", "13:00:00",
              "15:00:00", "15:01:00"]
    write_csv(frame([bar(f"2024-01-02 {s}") for s in stamps]), tmp_path / "20240102.csv")
    write_csv(frame([bar("2024-01-03 10:00:00")]), tmp_path / "20240103.csv")

    result = load(postgres, instance, tmp_path)

    kept = read_bars(postgres)["time"].dt.strftime("%d %H:%M:%S").tolist()
    assert kept == ["02 09:30:00", "02 11:30:00", "02 13:00:00", "02 15:00:00", "03 10:00:00"]
    meta = metadata(result)
    assert meta["rejected_outside_session"] == 4
    per_file = {r.data["file"]: r.data for r in meta["per_file"].records}
    assert per_file["20240102.csv"]["outside_session"] == 4
    assert per_file["20240103.csv"]["outside_session"] == 0
    rejected = [r.data for r in meta["rejected_bars_sample"].records]
    assert {(r["file"], r["time"][-8:]) for r in rejected} == {
        ("20240102.csv", "09:29:00"), ("20240102.csv", "11:30:30"),
        ("20240102.csv", "12:00:00"), ("20240102.csv", "15:01:00")}


def test_duplicate_bars_keep_the_copy_from_the_file_sorting_last(
    postgres: PostgresResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    write_csv(frame([bar("2024-01-02 09:31"), bar("2024-01-02 09:32", close=10.0)]),
              tmp_path / "2024-01" / "a.csv")
    write_csv(frame([bar("2024-01-02 09:31"), bar("2024-01-02 09:32", close=11.0)]),
              tmp_path / "2024-01" / "b.csv")

    result = load(postgres, instance, tmp_path)

    loaded = read_bars(postgres)
    assert loaded["close"].tolist() == [10.0, 11.0]  # one row per bar; b.csv wins 09:32
    assert loaded["volume"].tolist() == [100.0, 100.0]  # never summed twice
    meta = metadata(result)
    assert meta["duplicates_dropped"] == 1 and meta["duplicate_conflicts"] == 1
    table = meta["conflicting_duplicates"].splitlines()
    assert table[0].startswith("| code | time | copy | kept | name | open |")
    assert table[2].startswith("| 600000.SH | 2024-01-02 09:32:00 | 2024-01/a.csv line 3 | "
                               "dropped | 浦发银行 | 10.0 |")
    assert table[3].startswith("| 600000.SH | 2024-01-02 09:32:00 | 2024-01/b.csv line 3 | "
                               "**kept** | 浦发银行 | 11.0 |")
    assert len(table) == 4


def test_a_file_that_fails_to_parse_is_named_with_its_line_and_the_month_stays(
    postgres: PostgresResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    good = make_bars(["600000.SH"], ["2024-01-02"])
    write_csv(good, tmp_path / "2024-01" / "a.csv")
    assert load(postgres, instance, tmp_path).success
    before = read_bars(postgres)

    write_csv(make_bars(["600000.SH"], ["2024-01-03"]), tmp_path / "2024-01" / "b.csv")
    text = (tmp_path / "2024-01" / "a.csv").read_text().splitlines()
    text[3] = text[3].replace(text[3].split(",")[6], "abc")  # close of the 3rd bar: line 4
    (tmp_path / "2024-01" / "a.csv").write_text("\n".join(text) + "\n")
    (tmp_path / "2024-01" / "c.csv").write_text(
        ",".join(LANDING) + "\n2024-01-04 09:31:00,600000.SH,x,1,1,1,1,1,1\n2024-01-04 09:32\n"
    )

    result = load(postgres, instance, tmp_path)

    message = failure(result)
    assert "2024-01/a.csv: line 4: close 'abc' is not a number" in message
    assert "2024-01/c.csv: line 3: expected 9 fields, got 1" in message
    pd.testing.assert_frame_equal(read_bars(postgres), before)  # b.csv not loaded either


def test_skip_bad_files_loads_the_others_and_nothing_of_a_bad_file(
    postgres: PostgresResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    write_csv(make_bars(["600000.SH"], ["2024-01-02"]), tmp_path / "2024-01" / "a.csv")
    bad = make_bars(["000001.SZ"], ["2024-01-02"]).astype({"time": str})
    bad.loc[100, "time"] = "yesterday"
    write_csv(bad, tmp_path / "2024-01" / "b.csv")

    result = load(postgres, instance, tmp_path, skip_bad_files=True)

    assert result.success
    assert set(read_bars(postgres)["code"]) == {"600000.SH"}
    skipped = [r.data for r in metadata(result)["skipped_files"].records]
    assert skipped == [{"file": "2024-01/b.csv", "where": "line 102",
                        "reason": "time 'yesterday' is not ISO 8601"}]


def test_a_database_error_during_copy_rolls_back_the_whole_month(
    postgres: PostgresResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    write_csv(make_bars(["600000.SH"], ["2024-01-02"]), tmp_path / "2024-01" / "a.csv")
    assert load(postgres, instance, tmp_path).success
    before = read_bars(postgres)
    broken = make_bars(["000001.SZ"], ["2024-01-03"])
    broken.loc[239, "name"] = "NUL\x00byte"  # parses, but PostgreSQL text refuses it
    write_csv(broken, tmp_path / "2024-01" / "b.csv")

    result = load(postgres, instance, tmp_path)

    message = failure(result)
    assert "writing time in [2024-01-01 00:00, 2024-02-01 00:00) to stock_1min_qfq failed; " \
        "the previous rows were left as they were" in message
    assert "0x00" in message
    pd.testing.assert_frame_equal(read_bars(postgres), before)


def test_times_with_offsets_become_beijing_wall_clock_and_negative_prices_stay(
    postgres: PostgresResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    row = ",".join(map(str, bar("2024-01-02T01:31:00Z", close=-3.5)))
    (tmp_path / "20240102.csv").write_text(",".join(LANDING) + "\n" + row + "\n")
    utc = pa.table({
        "time": pa.array([pd.Timestamp("2024-01-03 05:00", tz="UTC")], pa.timestamp("ms", "UTC")),
        **{c: [v] for c, v in zip(LANDING[1:], bar("")[1:], strict=True)},
    })
    pq.write_table(utc, tmp_path / "20240103.parquet")

    assert load(postgres, instance, tmp_path).success

    loaded = read_bars(postgres)
    assert loaded["time"].astype(str).tolist() == ["2024-01-02 09:31:00", "2024-01-03 13:00:00"]
    assert loaded["close"].iloc[0] == -3.5 and loaded["low"].iloc[0] == -3.6


def test_a_month_without_files_is_left_untouched(
    postgres: PostgresResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    write_csv(make_bars(["600000.SH"], ["2024-01-02"]), tmp_path / "2024-01" / "a.csv")
    assert load(postgres, instance, tmp_path).success

    result = load(postgres, instance, tmp_path / "empty")

    assert result.success and metadata(result)["months_replaced"] == "none"
    assert len(read_bars(postgres)) == 240


def test_a_missing_column_is_named_with_a_hint_about_column_map(
    postgres: PostgresResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    bars = make_bars(["600000.SH"], ["2024-01-02"]).rename(columns={"amount": "turnover"})
    write_csv(bars, tmp_path / "20240102.csv")

    message = failure(load(postgres, instance, tmp_path))

    assert "20240102.csv: line 1: missing column(s) ['amount']" in message
    assert "column_map" in message


def test_bars_on_an_exchange_holiday_are_rejected_as_non_trading_day(
    postgres: PostgresResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    days = ["2025-10-08 10:00", "2025-10-09 10:00", "2025-10-11 10:00", "2025-10-09 12:00"]
    write_csv(frame([bar(d) for d in days]), tmp_path / "2025-10" / "a.csv")

    result = load(postgres, instance, tmp_path, key="2025-10-01")

    assert read_bars(postgres)["time"].astype(str).tolist() == ["2025-10-09 10:00:00"]
    meta = metadata(result)
    assert meta["rejected_non_trading_day"] == 2 and meta["rejected_outside_session"] == 1
    reasons = {r.data["time"][:10]: r.data["reason"]
               for r in meta["rejected_bars_sample"].records}
    assert reasons == {"2025-10-08": "non_trading_day", "2025-10-11": "non_trading_day",
                       "2025-10-09": "outside_session"}


def test_non_finite_numbers_fail_the_file_by_line_and_load_nothing_of_it(
    postgres: PostgresResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    write_csv(make_bars(["600000.SH"], ["2024-01-02"]), tmp_path / "2024-01" / "a.csv")
    assert load(postgres, instance, tmp_path).success
    before = read_bars(postgres)
    header = ",".join(LANDING)
    (tmp_path / "2024-01" / "b.csv").write_text(
        f"{header}\n2024-01-03 09:31:00,000001.SZ,x,1,1,1,1,1,1\n"
        "2024-01-03 09:32:00,000001.SZ,x,1,1,1,1,1e400,1\n")
    (tmp_path / "2024-01" / "c.csv").write_text(
        f"{header}\n2024-01-03 09:31:00,000002.SZ,x,1,1,1,1,1,inf\n")

    message = failure(load(postgres, instance, tmp_path))

    assert "2024-01/b.csv: line 3: volume '1e400' is not a finite number" in message
    assert "2024-01/c.csv: line 2: amount 'inf' is not a finite number" in message
    pd.testing.assert_frame_equal(read_bars(postgres), before)


def test_parquet_columns_of_the_wrong_type_are_refused_by_name(
    postgres: PostgresResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    bars = make_bars(["600000.SH"], ["2024-01-02"])
    table = pa.table({
        "time": pa.array(bars["time"], pa.timestamp("us")),
        "code": pa.array([600000] * len(bars), pa.int64()),
        "name": pa.array([1.5] * len(bars), pa.float64()),
        "open": pa.array(bars["open"].astype(str)),
        "high": bars["high"], "low": bars["low"], "close": bars["close"],
        "volume": pa.array([True] * len(bars)),
        "amount": bars["amount"],
    })
    pq.write_table(table, tmp_path / "20240102.parquet")

    message = failure(load(postgres, instance, tmp_path))

    assert "20240102.parquet: schema: " in message
    for expected in ("column code is int64, expected a string",
                     "column name is double, expected a string",
                     "column open is large_string, expected a number",
                     "column volume is bool, expected a number"):
        assert expected in message
    assert read_bars(postgres).empty


def test_undecodable_bytes_and_overlong_lines_are_named_by_line(
    postgres: PostgresResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    header = ",".join(LANDING)
    good = "2024-01-02 09:31:00,600000.SH,x,1,1,1,1,1,1"
    (tmp_path / "2024-01").mkdir()
    (tmp_path / "2024-01" / "gbk.csv").write_bytes(
        f"{header}\n{good}\n2024-01-02 09:32:00,600000.SH,浦发银行,1,1,1,1,1,1\n".encode("gbk"))
    (tmp_path / "2024-01" / "long.csv").write_text(
        f"{header}\n{good}\n{good}\n2024-01-02 09:33:00,600000.SH,{'x' * (30 << 20)},1,1,1,1,1,1\n")

    message = failure(load(postgres, instance, tmp_path))

    assert "2024-01/gbk.csv: line 3: byte " in message and "is not utf-8" in message
    assert "2024-01/long.csv: line 4: a line of more than 1,048,576 bytes" in message
    assert read_bars(postgres).empty


def test_a_month_beyond_the_package_loads_on_the_closures_file_trading_days(
    postgres: PostgresResource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """January 2027, which exchange-calendars 4.13 does not know: the shipped closures file
    makes New Year's Day a closure and the first Monday a trading day."""
    monkeypatch.delenv("KLINE_XSHG_CLOSURES", raising=False)
    days = ["2027-01-01 10:00", "2027-01-02 10:00", "2027-01-04 10:00", "2027-01-04 12:00"]
    write_csv(frame([bar(d) for d in days]), tmp_path / "2027-01" / "a.csv")

    month = load_month(postgres.connect, STOCK_TABLE, tmp_path,
                       MonthWindow.of_months("2027-01", "2027-01"), ReadOptions(), workers=1,
                       progress=False)

    assert read_bars(postgres)["time"].astype(str).tolist() == ["2027-01-04 10:00:00"]
    assert month.rows_loaded == 1
    assert month.non_trading_day == 2 and month.outside_session == 1


def test_a_code_that_is_not_a_symbol_fails_the_file_by_line(
    postgres: PostgresResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    header = ",".join(LANDING)
    (tmp_path / "2024-01").mkdir()
    (tmp_path / "2024-01" / "a.csv").write_text(
        f"{header}\n2024-01-03 09:31:00,000001.SZ,x,1,1,1,1,1,1\n"
        f"2024-01-03 09:32:00,{'9' * 1_000_000},x,1,1,1,1,1,1\n")

    message = failure(load(postgres, instance, tmp_path))

    assert ("2024-01/a.csv: line 3: code: symbol '9999999999999999999999999999999999999999'… "
            "(1,000,000 characters) is not six digits, a dot and SH, SZ or BJ") in message
    assert read_bars(postgres).empty


def test_values_beyond_the_bounds_fail_the_file_by_line(
    postgres: PostgresResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    header = ",".join(LANDING)
    (tmp_path / "2024-01").mkdir()
    (tmp_path / "2024-01" / "a.csv").write_text(
        f"{header}\n2024-01-03 09:31:00,000001.SZ,x,1,1,1,1,1,1\n"
        "2024-01-03 09:32:00,000001.SZ,x,1,1,1,1,1e300,1\n")
    (tmp_path / "2024-01" / "b.csv").write_text(
        f"{header}\n2024-01-03 09:31:00,000002.SZ,x,-5,1,1,2000000,1,1\n")

    message = failure(load(postgres, instance, tmp_path))

    assert "2024-01/a.csv: line 3: volume '1e300' is beyond ±1e+15" in message
    assert "2024-01/b.csv: line 2: close '2000000' is beyond ±1e+06" in message
    assert read_bars(postgres).empty
