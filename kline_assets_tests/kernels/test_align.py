"""latest_per_bucket: the latest record per (shop, iphone, 15-minute bucket), ties → higher id."""

import numpy as np
import pandas as pd

from kline_assets.kernels.align import bucket_start_us, latest_per_bucket


def _us(ts: str) -> int:
    return pd.Timestamp(ts, tz="Asia/Tokyo").value // 1000


def _reference(df: pd.DataFrame) -> pd.DataFrame:
    df = df.assign(bucket=pd.to_datetime(df.recorded_us, unit="us", utc=True)
                   .dt.tz_convert("Asia/Tokyo").dt.floor("15min"))
    return (df.sort_values(["recorded_us", "id"]).groupby(["shop_id", "iphone_id", "bucket"])
            .tail(1).sort_values("id").reset_index(drop=True))


def test_ties_edges_and_groups_match_pandas():
    rows = [
        # id, shop, iphone, recorded_at
        (1, 1, 10, "2025-10-01 00:00:00"),      # exactly on an edge: belongs to 00:00
        (2, 1, 10, "2025-10-01 00:14:59.999999"),  # latest in bucket 00:00
        (3, 1, 10, "2025-10-01 00:15:00"),      # edge: next bucket
        (4, 2, 10, "2025-10-01 00:05:00"),
        (5, 2, 10, "2025-10-01 00:05:00"),      # tie on recorded_at: higher id wins
        (6, 2, 11, "2025-10-01 00:05:00"),      # other iphone, same shop and bucket
        (7, 1, 10, "2025-09-30 23:59:59"),      # previous day/month
    ]
    df = pd.DataFrame(rows, columns=["id", "shop_id", "iphone_id", "ts"])
    df["recorded_us"] = df.ts.map(_us)
    winners = latest_per_bucket(df.shop_id.to_numpy(), df.iphone_id.to_numpy(),
                                df.recorded_us.to_numpy(), df.id.to_numpy())
    got = sorted(df.id.to_numpy()[winners].tolist())
    assert got == sorted(_reference(df).id.tolist()) == [2, 3, 5, 6, 7]


def test_random_records_match_pandas():
    rng = np.random.default_rng(3)
    n = 20_000
    df = pd.DataFrame({
        "id": rng.permutation(n) + 1,
        "shop_id": rng.integers(1, 6, n),
        "iphone_id": rng.integers(1, 4, n),
        # whole seconds so ties on recorded_at are frequent
        "recorded_us": _us("2025-10-01") + rng.integers(0, 86_400 * 3, n) * 1_000_000,
    })
    winners = latest_per_bucket(df.shop_id.to_numpy(), df.iphone_id.to_numpy(),
                                df.recorded_us.to_numpy(), df.id.to_numpy())
    assert sorted(df.id.to_numpy()[winners]) == sorted(_reference(df).id)


def test_empty_input_and_bucket_floor():
    empty = np.array([], dtype=np.int64)
    assert latest_per_bucket(empty, empty, empty, empty).size == 0
    assert bucket_start_us(np.array([_us("2025-10-01 09:44:59")]))[0] == _us("2025-10-01 09:30")
