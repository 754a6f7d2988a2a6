"""The classic approach the platform is measured against: one pandas script.

Read every landed CSV, merge, clean, build the features with
``groupby().shift()`` / ``groupby().rolling()`` on a complete daily calendar per
store, and validate each layer with an expectation suite written in pandas.
Same rules and the same features as ``platform_assets.transforms`` (the smoke
test compares the two frame for frame), idiomatic pandas, no tricks.

    .venv/bin/python benchmarks/pandas_pipeline.py DIR_WITH_CSV_FILES
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

LAGS = (1, 7, 14, 28)
WINDOWS = (7, 28)
HOLIDAY_HORIZON = 30
MONTHS = {"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6,
          "Jul": 7, "Aug": 8, "Sept": 9, "Oct": 10, "Nov": 11, "Dec": 12}
SALES_DTYPES = {"Store": "int32", "DayOfWeek": "int8", "Sales": "int32", "Customers": "int32",
                "Open": "int8", "Promo": "int8", "StateHoliday": "str", "SchoolHoliday": "int8"}


def run(folder: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """(feature table, failing-row count of every check) for the CSV files in ``folder``."""
    raw_stores = pd.read_csv(folder / "store.csv")
    raw_sales = pd.concat(
        [pd.read_csv(path, dtype=SALES_DTYPES, parse_dates=["Date"]).assign(_source_file=path.name, _load_order=i)
         for i, path in enumerate(sorted(folder.glob("sales_*.csv")))],
        ignore_index=True,
    )
    failures = {f"raw_sales.{k}": v for k, v in check_raw(raw_sales, raw_stores).items()}
    cleaned = clean(raw_sales, raw_stores)
    failures |= {f"cleaned_sales.{k}": v for k, v in check_cleaned(cleaned).items()}
    features = build_features(cleaned)
    failures |= {f"sales_features.{k}": v for k, v in check_features(features, cleaned).items()}
    return features, failures


# --- cleaning -------------------------------------------------------------------------------------

def clean(raw_sales: pd.DataFrame, raw_stores: pd.DataFrame) -> pd.DataFrame:
    sales = (raw_sales.sort_values(["_load_order", "_source_file"])
             .drop_duplicates(["Store", "Date"], keep="last"))
    sales = pd.DataFrame({
        "store": sales["Store"],
        "date": sales["Date"],
        "day_of_week": sales["DayOfWeek"],
        "sales": sales["Sales"],
        "customers": sales["Customers"],
        "is_open": sales["Open"] == 1,
        "promo": sales["Promo"] == 1,
        "state_holiday": sales["StateHoliday"].astype(str).str.strip().str.strip('"').str.lower(),
        "school_holiday": sales["SchoolHoliday"] == 1,
        "_source_file": sales["_source_file"],
    })
    merged = sales.merge(clean_stores(raw_stores).assign(_known=True), on="store", how="left")
    merged["quality_issue"] = np.select(
        [merged["_known"].isna(), merged["sales"] < 0, ~merged["is_open"] & (merged["sales"] > 0)],
        ["unknown_store", "negative_sales", "sales_on_closed_day"], default=None)
    return merged.drop(columns="_known").sort_values(["date", "store"], ignore_index=True)


def clean_stores(raw: pd.DataFrame) -> pd.DataFrame:
    known = raw["CompetitionOpenSinceYear"].notna() & raw["CompetitionOpenSinceMonth"].notna()
    promo2 = raw["Promo2"] == 1
    opened = pd.to_datetime(pd.DataFrame({"year": raw["CompetitionOpenSinceYear"].where(known, 1900),
                                          "month": raw["CompetitionOpenSinceMonth"].where(known, 1), "day": 1}))
    week = raw["Promo2SinceWeek"].fillna(1).astype(int).astype(str).str.zfill(2)
    year = raw["Promo2SinceYear"].fillna(2000).astype(int).astype(str)
    promo2_since = pd.to_datetime(year + "-W" + week + "-1", format="%G-W%V-%u")
    return pd.DataFrame({
        "store": raw["Store"].astype("int32"),
        "store_type": raw["StoreType"],
        "assortment": raw["Assortment"],
        "competition_distance": raw["CompetitionDistance"].fillna(raw["CompetitionDistance"].median()).astype(float),
        "competition_distance_missing": raw["CompetitionDistance"].isna(),
        "competition_open_since": opened,
        "competition_open_since_missing": ~known,
        "promo2": promo2,
        "promo2_since": promo2_since.where(promo2),
        "promo_interval": raw["PromoInterval"].where(promo2),
    })


# --- features -------------------------------------------------------------------------------------

def build_features(cleaned: pd.DataFrame) -> pd.DataFrame:
    df = cleaned.copy()
    d = df["date"].dt
    df["year"], df["month"], df["day"] = d.year, d.month, d.day
    df["week_of_year"] = d.isocalendar().week.astype(int)
    df["day_of_year"], df["quarter"] = d.day_of_year, d.quarter
    df["day_of_week"] = d.day_of_week + 1
    df["is_weekend"] = df["day_of_week"] >= 6
    df["is_month_start"], df["is_month_end"] = d.is_month_start, d.is_month_end

    started = df["promo2"] & (df["date"] >= df["promo2_since"])
    restarts = (df[["store", "promo_interval"]].drop_duplicates("store").dropna()
                .assign(month=lambda s: s["promo_interval"].str.split(",")).explode("month"))
    restarts = restarts.assign(month=restarts["month"].map(MONTHS), _restart=True)[["store", "month", "_restart"]]
    df = df.merge(restarts, on=["store", "month"], how="left")
    df["promo2_active"] = started & df["_restart"].notna()
    df["weeks_since_promo2_start"] = ((df["date"] - df["promo2_since"]).dt.days // 7).where(started).astype("Int32")

    since = df["competition_open_since"]
    df["competition_open"] = df["date"] >= since
    df["months_since_competition_open"] = ((d.year - since.dt.year) * 12 + (d.month - since.dt.month)).clip(0, 240)
    df["log_competition_distance"] = np.log1p(df["competition_distance"])
    df["is_state_holiday"] = df["state_holiday"] != "0"

    df = df.sort_values(["store", "date"], ignore_index=True)
    holiday = df["date"].where(df["is_state_holiday"])
    by_store = holiday.groupby(df["store"])
    df["days_until_state_holiday"] = _capped_days(by_store.bfill() - df["date"])
    df["days_since_state_holiday"] = _capped_days(df["date"] - by_store.ffill())

    # A complete daily calendar per store, so shift(k) is k calendar days and a gap is NaN.
    grid = (df.set_index("date").groupby("store")[["sales", "customers"]]
            .apply(lambda s: s.asfreq("D")).astype(float))
    by_store = grid.groupby(level="store")
    for k in LAGS:
        shifted = by_store.shift(k)
        grid[f"sales_lag_{k}"], grid[f"customers_lag_{k}"] = shifted["sales"], shifted["customers"]
    before = by_store["sales"].shift(1)
    for w in WINDOWS:
        window = before.groupby(level="store").rolling(w, min_periods=1)
        grid[f"sales_mean_{w}d"] = window.mean().droplevel(0)
        grid[f"sales_std_{w}d"] = before.groupby(level="store").rolling(w, min_periods=2).std().droplevel(0)
    history = grid.drop(columns=["sales", "customers"]).reset_index()
    df = df.merge(history, on=["store", "date"], how="left")
    return df.drop(columns=["_restart"]).sort_values(["date", "store"], ignore_index=True)


def _capped_days(gap: pd.Series) -> pd.Series:
    return gap.dt.days.clip(upper=HOLIDAY_HORIZON).fillna(HOLIDAY_HORIZON).astype(int)


# --- expectation suites (the contracts' checks, in pandas) ----------------------------------------

def check_raw(sales: pd.DataFrame, stores: pd.DataFrame) -> dict[str, int]:
    return {
        "store_date_unique_in_batch": int(sales.duplicated(["_source_file", "Store", "Date"]).sum()),
        "day_of_week_matches_date": int((sales["DayOfWeek"] != sales["Date"].dt.day_of_week + 1).sum()),
        "no_sales_when_closed": int(((sales["Open"] == 0) & ((sales["Sales"] > 0) | (sales["Customers"] > 0))).sum()),
        "store_in_master": int((~sales["Store"].isin(stores["Store"])).sum()),
        "store_id_positive": int((sales["Store"] < 1).sum()),
        **_not_null(sales, ["Store", "DayOfWeek", "Date", "Sales", "Customers", "Open", "StateHoliday"]),
        "day_of_week_in_range": int((~sales["DayOfWeek"].between(1, 7)).sum()),
        "sales_not_negative": int((sales["Sales"] < 0).sum()),
        "customers_not_negative": int((sales["Customers"] < 0).sum()),
        **{f"{c}_is_flag": int((~sales[c].isin([0, 1])).sum()) for c in ("Open", "Promo", "SchoolHoliday")},
        "state_holiday_code": int((~sales["StateHoliday"].isin(["0", "a", "b", "c"])).sum()),
        "store_unique": int(stores["Store"].duplicated().sum()),
        "store_type_code": int((~stores["StoreType"].isin(list("abcd"))).sum()),
        "assortment_code": int((~stores["Assortment"].isin(list("abc"))).sum()),
        "competition_distance_not_negative": int((stores["CompetitionDistance"] < 0).sum()),
        "promo2_fields_match_promo2": int(((stores["Promo2"] == 1) != stores[
            ["Promo2SinceWeek", "Promo2SinceYear", "PromoInterval"]].notna().all(axis=1)).sum()),
    }


def check_cleaned(cleaned: pd.DataFrame) -> dict[str, int]:
    return {
        "store_date_unique": int(cleaned.duplicated(["store", "date"]).sum()),
        "no_sales_when_closed": int((~cleaned["is_open"] & ((cleaned["sales"] > 0) | (cleaned["customers"] > 0))).sum()),
        "day_of_week_matches_date": int((cleaned["day_of_week"] != cleaned["date"].dt.day_of_week + 1).sum()),
        "promo2_since_matches_promo2": int((cleaned["promo2"] != (cleaned["promo2_since"].notna()
                                                                 & cleaned["promo_interval"].notna())).sum()),
        "no_quality_issue": int(cleaned["quality_issue"].notna().sum()),
        **_not_null(cleaned, ["store", "date", "sales", "is_open", "store_type", "competition_distance",
                              "competition_open_since"]),
        "sales_not_negative": int((cleaned["sales"] < 0).sum()),
        "customers_not_negative": int((cleaned["customers"] < 0).sum()),
        "state_holiday_code": int((~cleaned["state_holiday"].isin(["0", "a", "b", "c"])).sum()),
    }


def check_features(features: pd.DataFrame, cleaned: pd.DataFrame) -> dict[str, int]:
    keys = cleaned[["store", "date"]]

    def had_row(days_before: int) -> np.ndarray:
        earlier = features[["store", "date"]].assign(date=features["date"] - pd.Timedelta(days=days_before))
        return earlier.merge(keys, on=["store", "date"], how="left", indicator=True)["_merge"].eq("both").to_numpy()

    lag_failures = sum(int((features[f"sales_lag_{k}"].isna().to_numpy() & had_row(k)).sum()) for k in LAGS)
    row_in_week_before = np.logical_or.reduce([had_row(k) for k in range(1, 8)])
    ranges = {"month": (1, 12), "day": (1, 31), "week_of_year": (1, 53), "day_of_year": (1, 366), "quarter": (1, 4),
              "day_of_week": (1, 7), "months_since_competition_open": (0, 240),
              "days_until_state_holiday": (0, 30), "days_since_state_holiday": (0, 30)}
    return {
        "store_date_unique": int(features.duplicated(["store", "date"]).sum()),
        "lags_null_only_without_history": lag_failures,
        "rolling_null_only_without_history": int((features["sales_mean_7d"].isna().to_numpy()
                                                  & row_in_week_before).sum()),
        "weeks_since_promo2_consistent": int((features["promo2_active"]
                                              & features["weeks_since_promo2_start"].isna()).sum()),
        **_not_null(features, ["store", "date", "sales", "store_type", "promo2_active",
                               "months_since_competition_open", "log_competition_distance"]),
        **{f"{c}_in_range": int((~features[c].between(lo, hi)).sum()) for c, (lo, hi) in ranges.items()},
        "log_distance_not_negative": int((features["log_competition_distance"] < 0).sum()),
        "sales_std_7d_not_negative": int((features["sales_std_7d"] < 0).sum()),
    }


def _not_null(frame: pd.DataFrame, columns: list[str]) -> dict[str, int]:
    return {f"{c}_not_missing": int(frame[c].isna().sum()) for c in columns}


if __name__ == "__main__":
    features, failures = run(Path(sys.argv[1]))
    print(f"{len(features):,} feature rows; {sum(1 for v in failures.values() if v)} of {len(failures)} checks failed")
