"""Tick → bar kernel against a slow, obviously-correct reference on constructed days.

The reference walks the ticks one by one with Python datetimes and dictionaries, following the
vendors' conventions literally; the kernel must agree with it bar for bar. Further tests pin the
failure modes of the usual per-tick bar generator (vnpy's BarGenerator shows each of them).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import numpy as np
import pytest

from kline_assets.kernels.bars import (
    Bars,
    IncrementalBars,
    SymbolState,
    continue_bars,
    fill_bars,
    resample_bars,
    synthesize,
    ticks_to_bars,
)
from kline_assets_tests.support.bars_reference import (
    DAY,
    Tick,
    assert_same,
    at,
    check_against_reference,
    edge_day,
    ref_fill,
    ref_resample,
    reference,
    rows_of,
    to_ticks,
)

# ---------------------------------------------------------------- kernel vs reference

@pytest.mark.parametrize("profile", ["end", "tushare"])
@pytest.mark.parametrize("fill", [False, True])
def test_edge_day_per_print(profile: str, fill: bool) -> None:
    bars = check_against_reference(edge_day(), profile=profile, fill=fill)
    frames = {str(f)[11:16] for f in bars.frame}
    assert "11:31" not in frames and "15:01" not in frames and "13:00" not in frames
    assert ("09:30" in frames) == (profile == "tushare")


def test_edge_day_known_bars() -> None:
    ticks, mask = to_ticks(edge_day())
    bars, report = ticks_to_bars(ticks, mask)
    got = {(s, str(f)[11:16]): (o, c, v) for s, f, o, _, _, c, v, _ in rows_of(bars)}
    # The auction, 09:30:00 and 09:30:59.5 all fold into 09:31.
    assert got[("600000.SH", "09:31")] == (10.1, 10.05, 5400)
    assert got[("600000.SH", "09:32")] == (10.3, 10.3, 200)  # 09:31:00.000001
    assert got[("600000.SH", "09:33")] == (10.25, 10.26, 200)  # sorted, duplicate dropped
    assert got[("000001.SZ", "11:30")] == (20.3, 20.4, 200)
    assert got[("600000.SH", "13:01")] == (10.5, 10.6, 200)
    assert got[("000001.SZ", "15:00")] == (20.0, 20.1, 1000)
    assert report.duplicates == 1
    assert report.rejected == {"non_trading_day": 3, "pre_open": 1, "lunch": 2,
                               "after_close": 1, "bad_price": 2, "bad_volume": 1}
    empty = ("600000.SH", "09:34")
    assert empty not in got
    filled, _ = ticks_to_bars(ticks, mask, fill=True)
    fgot = {(s, str(f)[11:16]): (o, h, lo, c, v, a) for s, f, o, h, lo, c, v, a in
            rows_of(filled)}
    assert fgot[empty] == (10.26, 10.26, 10.26, 10.26, 0.0, 0.0)


def test_tick_ids_order_and_duplicates() -> None:
    rows = [
        Tick("A", at("10:00:00"), 10.0, 100, 1000, tick_id=2),
        Tick("A", at("10:00:00"), 10.5, 100, 1050, tick_id=1),   # earlier id: opens the bar
        Tick("A", at("10:00:00"), 11.0, 300, 3300, tick_id=2),   # same id: duplicate
        Tick("B", at("10:00:00"), 5.0, 100, 500, tick_id=1),
        Tick("A", at("09:59:30"), 9.0, 100, 900, tick_id=9),
    ]
    bars = check_against_reference(rows)
    assert rows_of(bars)[0][2:] == (9.0, 10.5, 9.0, 10.0, 300, 2950)


def cumulative_day() -> list[Tick]:
    """Snapshots with cumulative volume/amount, a reset, an unchanged snapshot, the day-high
    rising between snapshots, two symbols and a second day."""
    rows = []
    specs = [
        # clock, price, cum vol, cum amount, day high, day low
        ("09:25:00", 10.0, 1000, 10000, 10.0, 10.0),
        ("09:30:03", 10.1, 1500, 15050, 10.3, 10.0),   # traded 10.3 between snapshots
        ("09:30:06", 10.1, 1500, 15050, 10.3, 10.0),   # no trade: volume 0, still a print
        ("09:31:03", 10.2, 1700, 17090, 10.3, 9.8),    # day-low fell to 9.8
        ("09:32:00", 10.2, 1200, 12000, 10.3, 9.8),    # reset: contributes 0
        ("09:32:03", 10.25, 1300, 13025, 10.4, 9.8),   # differences from the reset value
        ("11:30:00", 10.3, 1400, 14055, 10.4, 9.8),
        ("13:00:00", 10.2, 1600, 16095, 10.4, 9.8),
        ("15:00:00", 10.1, 2000, 20135, 10.4, 9.8),
    ]
    for clock, price, v, a, hi, lo in specs:
        rows.append(Tick("600000.SH", at(clock), price, v, a, high=hi, low=lo))
        rows.append(Tick("000002.SZ", at(clock), price * 2, v * 3, a * 6, high=hi * 2,
                         low=lo * 2))
    rows.append(Tick("600000.SH", at("09:25:00", "2025-10-10"), 10.0, 400, 4000, high=10.0,
                     low=10.0))  # the next day starts from zero
    rows.append(Tick("600000.SH", at("09:30:03", "2025-10-10"), 10.0, 500, 5000, high=10.0,
                     low=10.0))
    return rows


@pytest.mark.parametrize("profile", ["end", "tushare"])
@pytest.mark.parametrize("unit", ["shares", "lots"])
def test_cumulative_with_reset_and_day_high(profile: str, unit: str) -> None:
    bars = check_against_reference(cumulative_day(), profile=profile, cumulative=True,
                                   volume_unit=unit)
    got = {(s, str(f)): r for s, f, *r in rows_of(bars)}
    scale = 100 if unit == "lots" else 1
    if profile == "end":
        # Auction + first snapshot + unchanged snapshot; high widened to the day-high 10.3.
        assert got[("600000.SH", "2025-10-09 09:31:00")] == [10.0, 10.3, 10.0, 10.1,
                                                               1500 * scale, 15050]
    assert got[("600000.SH", "2025-10-09 09:32:00")][2] == 9.8  # the day-low fell
    next_day = sum(r[4] for (s, f), r in got.items() if s == "600000.SH" and "10-10" in f)
    assert next_day == 500 * scale  # a new day counts from zero again
    assert all(r[4] >= 0 for r in got.values())


def test_cumulative_reset_reported() -> None:
    ticks, mask = to_ticks(cumulative_day())
    _, report = ticks_to_bars(ticks, mask, cumulative=True)
    assert report.resets == 2
    assert sorted(report.reset_symbols) == ["000002.SZ", "600000.SH"]
    assert "2025-10-09T09:32:00" in report.summary()


# ---------------------------------------------------------------- a full synthetic day

def full_day(symbols: int = 2, step_s: int = 3, seed: int = 3, day: str = DAY) -> list[Tick]:
    """3-second cumulative snapshots from the 09:25 auction to 15:00:00 for a few symbols."""
    rng = np.random.default_rng(seed)
    midnight = datetime.fromisoformat(day)
    clock = [timedelta(hours=9, minutes=25)]
    for lo, hi in ((9 * 3600 + 30 * 60, 11 * 3600 + 30 * 60), (13 * 3600, 15 * 3600)):
        clock += [timedelta(seconds=s) for s in range(lo + step_s, hi + 1, step_s)]
    rows = []
    for k in range(symbols):
        price = 10.0 + k
        cum_v = cum_a = 0.0
        for c in clock:
            price = round(price * (1 + rng.normal(0, 0.0005)), 2)
            v = float(rng.integers(0, 50) * 100)
            cum_v, cum_a = cum_v + v, cum_a + v * price
            rows.append(Tick(f"{600000 + k:06d}.SH", midnight + c, price, cum_v, cum_a))
    return rows


@pytest.fixture(scope="module")
def day_rows() -> list[Tick]:
    return full_day()


@pytest.mark.parametrize("profile,count", [("end", 240), ("tushare", 241)])
def test_full_day_counts_and_reference(day_rows: list[Tick], profile: str, count: int) -> None:
    ticks, mask = to_ticks(day_rows)
    out, report = synthesize(ticks, mask, profile=profile, cumulative=True)
    want, _ = reference(day_rows, profile=profile, cumulative=True)
    assert_same(rows_of(out[1]), want)
    assert report.kept == len(day_rows)
    one = out[1]
    for sym in ("600000.SH", "600001.SH"):
        mine = one.symbol == sym
        assert mine.sum() == count
        last_cum = max(r.volume for r in day_rows if r.symbol == sym)
        assert one.volume[mine].sum() == last_cum
        assert one.amount[mine].sum() == pytest.approx(
            max(r.amount for r in day_rows if r.symbol == sym), rel=1e-12)
    for period, n in ((5, 48), (15, 16), (30, 8), (60, 4)):
        bars = out[period]
        assert_same(rows_of(bars), ref_resample(want, period))
        assert (bars.symbol == "600000.SH").sum() == n
        assert bars.volume.sum() == one.volume.sum()
    hours = [str(f)[11:16] for f in out[60].frame[out[60].symbol == "600000.SH"]]
    assert hours == ["10:30", "11:30", "14:00", "15:00"]
    halves = [str(f)[11:16] for f in out[30].frame[out[30].symbol == "600000.SH"]]
    assert halves == ["10:00", "10:30", "11:00", "11:30", "13:30", "14:00", "14:30", "15:00"]
    if profile == "tushare":
        first = [str(f)[11:16] for f in out[15].frame[:1]]
        assert first == ["09:45"]


def test_a_day_beyond_the_package_trades_by_the_closures_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """2027 comes from the shipped closures file: its first Monday is a full session day, New
    Year's Day is a closure."""
    monkeypatch.delenv("KLINE_XSHG_CLOSURES", raising=False)
    monday = full_day(symbols=1, step_s=30, day="2027-01-04")
    ticks, mask = to_ticks(monday)
    out, report = synthesize(ticks, mask, cumulative=True)
    assert report.kept == len(monday) and len(out[1]) == 240 and len(out[60]) == 4
    holiday, mask = to_ticks(full_day(symbols=1, step_s=30, day="2027-01-01"))
    out, report = synthesize(holiday, mask, cumulative=True)
    assert len(out[1]) == 0 and report.rejected["non_trading_day"] == len(holiday)


def test_n_minute_from_sparse_bars() -> None:
    """A block exists iff it holds a 1-minute bar; edge minutes land in the right block."""
    ticks, mask = to_ticks(edge_day())
    one, _ = ticks_to_bars(ticks, mask, profile="tushare")
    want = rows_of(one)
    for period in (5, 15, 30, 60):
        assert_same(rows_of(resample_bars(one, period)), ref_resample(want, period))


# ---------------------------------------------------------------- incremental form

def batches_of(rows: list[Tick], cuts: list[str]) -> list[list[Tick]]:
    """Split time-ordered rows at clock times (each batch holds times < the next cut)."""
    ordered = sorted(rows, key=lambda r: (r.time, r.symbol))
    edges = [at(c) for c in cuts]
    out: list[list[Tick]] = [[] for _ in range(len(edges) + 1)]
    for r in ordered:
        out[sum(r.time >= e for e in edges)].append(r)
    return [b for b in out if b]


@pytest.mark.parametrize("fill", [False, True])
def test_incremental_equals_batch(day_rows: list[Tick], fill: bool) -> None:
    rows = day_rows + [r for r in cumulative_day() if r.symbol == "000002.SZ"]
    cuts = ["09:30:00", "09:30:30", "09:31:00.5", "10:00:01", "11:29:59", "13:00:00",
            "13:00:30", "14:59:59"]
    live = IncrementalBars(cumulative=True)
    batches = batches_of(rows, cuts)
    for i, batch in enumerate(batches):
        ticks, mask = to_ticks(batch)
        live.update(ticks, mask)
        if i == 3:
            live.update(ticks, mask)  # the same batch twice changes nothing
    ticks, mask = to_ticks(rows)
    want, report = ticks_to_bars(ticks, mask, cumulative=True, fill=fill)
    assert_same(rows_of(live.bars(fill=fill)), rows_of(want))
    assert live.report.kept == report.kept
    assert live.report.resets == report.resets
    # Applying every batch again changes nothing either.
    for batch in batches:
        live.update(*to_ticks(batch))
    assert_same(rows_of(live.bars(fill=fill)), rows_of(want))


def test_incremental_edge_day_with_day_high() -> None:
    rows = [r for r in cumulative_day() if r.time.date() == datetime(2025, 10, 9).date()]
    live = IncrementalBars(cumulative=True, profile="tushare")
    for batch in batches_of(rows, ["09:30:04", "09:31:04", "09:32:01", "13:00:00"]):
        changed = live.update(*to_ticks(batch))
        assert len(changed) >= 1
    want, _ = ticks_to_bars(*to_ticks(rows), cumulative=True, profile="tushare")
    assert_same(rows_of(live.bars()), rows_of(want))


def test_incremental_per_print_with_tick_ids() -> None:
    rows = [Tick("A", at("09:25:00"), 10.0, 100, 1000, tick_id=1)]
    rows += [Tick("A", at(f"09:{30 + i // 3}:{(i % 3) * 20:02d}"), 10 + i / 10, 100, 1000,
                  tick_id=i + 2) for i in range(12)]
    rows += [Tick("A", at("09:33:40"), 10.9, 100, 1000, tick_id=99)]  # same time, later id
    live = IncrementalBars()
    split = [rows[:5], rows[5:9], rows[9:13], rows[13:]]
    for batch in split:
        live.update(*to_ticks(batch))
    live.update(*to_ticks(split[1]))
    assert_same(rows_of(live.bars()), rows_of(ticks_to_bars(*to_ticks(rows))[0]))


# ---------------------------------------------------------------- per-tick generator failure modes

def test_session_last_bar_is_emitted_without_a_next_tick() -> None:
    rows = [Tick("A", at("11:29:10"), 10.0, 100, 1000), Tick("A", at("11:30:00"), 10.1, 100, 1010),
            Tick("A", at("14:59:50"), 10.2, 100, 1020), Tick("A", at("15:00:00"), 10.3, 100, 1030)]
    bars, _ = ticks_to_bars(*to_ticks(rows))
    assert [str(f)[11:16] for f in bars.frame] == ["11:30", "15:00"]
    live = IncrementalBars()
    live.update(*to_ticks(rows[:2]))
    assert [str(f)[11:16] for f in live.bars().frame] == ["11:30"]  # no later tick needed
    live.update(*to_ticks(rows[2:]))
    assert [str(f)[11:16] for f in live.bars().frame] == ["11:30", "15:00"]


def test_closing_prints_do_not_form_bars_of_their_own() -> None:
    rows = [Tick("A", at("11:29:30"), 10.0, 100, 1000), Tick("A", at("11:30:00"), 10.5, 700, 7350),
            Tick("A", at("14:59:30"), 10.0, 100, 1000), Tick("A", at("15:00:00"), 9.5, 900, 8550)]
    bars, _ = ticks_to_bars(*to_ticks(rows))
    assert len(bars) == 2
    assert list(bars.close) == [10.5, 9.5] and list(bars.volume) == [800, 1000]


@pytest.mark.parametrize("profile,label", [("end", "09:31"), ("tushare", "09:30")])
def test_auction_volume_is_kept(profile: str, label: str) -> None:
    rows = [Tick("A", at("09:25:00"), 10.0, 12_000, 120_000),
            Tick("A", at("09:30:03"), 10.1, 12_500, 125_050)]
    bars, _ = ticks_to_bars(*to_ticks(rows), cumulative=True, profile=profile)
    assert str(bars.frame[0])[11:16] == label
    assert bars.volume[0] == (12_500 if profile == "end" else 12_000)
    assert bars.volume.sum() == 12_500


def test_hourly_bars_never_span_lunch(day_rows: list[Tick]) -> None:
    out, _ = synthesize(*to_ticks(day_rows), periods=(60,), cumulative=True)
    labels = {str(f)[11:16] for f in out[60].frame}
    assert labels == {"10:30", "11:30", "14:00", "15:00"}
    afternoon_first = out[60].open[(out[60].symbol == "600000.SH")][2]
    first_1300 = next(r.price for r in day_rows if r.symbol == "600000.SH"
                      and r.time.time() >= time(13, 0))
    assert afternoon_first == first_1300


def test_first_snapshot_volume_is_kept() -> None:
    rows = [Tick("A", at("09:30:03"), 10.0, 5_000, 50_000),
            Tick("A", at("09:30:06"), 10.0, 5_300, 53_000)]
    bars, _ = ticks_to_bars(*to_ticks(rows), cumulative=True)
    assert bars.volume.tolist() == [5_300]
    live = IncrementalBars(cumulative=True)
    live.update(*to_ticks(rows[:1]))
    live.update(*to_ticks(rows[1:]))
    assert live.bars().volume.tolist() == [5_300]


def test_fill_reaches_the_n_minute_bars() -> None:
    """With fill, N-minute bars come from the filled 1-minute bars, as vendors serve an
    illiquid symbol: every block up to the last print, flat at the last close."""
    ticks, mask = to_ticks(edge_day())
    plain, _ = synthesize(ticks, mask, periods=(1, 5, 60))
    filled, _ = synthesize(ticks, mask, periods=(1, 5, 60), fill=True)
    assert len(filled[1]) > len(plain[1])
    assert_same(rows_of(fill_bars(plain[1])), rows_of(filled[1]))
    reference_filled = ref_fill(rows_of(plain[1]), "end")
    for period in (5, 60):
        assert_same(rows_of(filled[period]), ref_resample(reference_filled, period))
    assert len(filled[5]) > len(plain[5])  # the edge day has 5-minute blocks without a trade


def test_an_illiquid_symbol_gets_every_block_and_its_hour_opens_at_the_first_minute() -> None:
    rows = [Tick("600001.SH", at("09:30:30"), 10.0, 100.0, 1_000.0),
            Tick("600001.SH", at("09:43:10"), 10.5, 100.0, 1_050.0)]
    ticks, mask = to_ticks(rows)
    bars, _ = synthesize(ticks, mask, periods=(5, 60), fill=True)
    five = rows_of(bars[5])
    assert [b[1].strftime("%H:%M") for b in five] == ["09:35", "09:40", "09:45"]
    assert five[1][2:6] == (10.0, 10.0, 10.0, 10.0) and five[1][6] == 0  # flat, no volume
    hour = rows_of(bars[60])
    assert len(hour) == 1 and hour[0][2] == 10.0 and hour[0][5] == 10.5


def test_bad_options_raise() -> None:
    ticks, mask = to_ticks(edge_day())
    with pytest.raises(ValueError, match="profile"):
        ticks_to_bars(ticks, mask, profile="start")
    with pytest.raises(ValueError, match="period"):
        synthesize(ticks, mask, periods=(1, 7))


def test_continue_bars_with_state_kept_outside_equals_batch(day_rows: list[Tick]) -> None:
    """The consumer's way: each batch brings its own symbols; their state comes from a store
    (here a dict, in production Redis), the batch's bars are folded into the stored ones."""
    rows = day_rows + [r for r in cumulative_day() if r.symbol == "000002.SZ"]
    store: dict[str, tuple] = {}
    folded: dict[tuple[str, np.datetime64], list[float]] = {}
    batches = batches_of(rows, ["09:30:30", "09:31:00.5", "10:00:01", "13:00:30", "14:59:59"])
    for batch in [*batches, batches[2]]:  # the third batch delivered again adds nothing
        ticks, mask = to_ticks(batch)
        state = SymbolState.empty(len(ticks.names))
        for i, name in enumerate(ticks.names):
            if name in store:
                for f, value in zip(SymbolState.FIELDS, store[name], strict=True):
                    getattr(state, f)[i] = value
        bars, _ = continue_bars(ticks, mask, state, cumulative=True)
        for i, name in enumerate(ticks.names):
            store[name] = tuple(getattr(state, f)[i] for f in SymbolState.FIELDS)
        for b in range(len(bars)):
            key = (str(bars.symbol[b]), bars.frame[b])
            new = [getattr(bars, c)[b] for c in Bars.COLUMNS]
            old = folded.get(key)
            folded[key] = new if old is None else [
                old[0], max(old[1], new[1]), min(old[2], new[2]), new[3], old[4] + new[4],
                old[5] + new[5]]
    want, _ = ticks_to_bars(*to_ticks(rows), cumulative=True)
    assert len(folded) == len(want)
    for b in range(len(want)):
        got = folded[(str(want.symbol[b]), want.frame[b])]
        assert got == pytest.approx([getattr(want, c)[b] for c in Bars.COLUMNS], rel=1e-12)
