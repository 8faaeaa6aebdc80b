"""Synthetic but realistic data for the three example teams; deterministic for a seed and end date.

Each team gets its declared feature store and pipelines (the same specs its stack config uses)
and a generator writing daily feature snapshots + labelled events as parquet into the offline
store. Features drift over time and labels depend on the value *as of* the event, so a join
that peeks into the future gives visibly different (better-looking) training sets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from runtime.errors import ConfigurationError
from runtime.settings import Settings
from runtime.spec import FeatureStoreSpec, PipelineSpec
from runtime.storage import write_parquet

DEFAULT_ROWS = 3000
DEFAULT_SEED = 7
HISTORY_DAYS = 35
"""Days of daily feature snapshots before the end date."""

Generator = Callable[[np.random.Generator, int, pd.Timestamp], dict[str, pd.DataFrame]]


@dataclass(frozen=True)
class DemoTeam:
    name: str
    feature_store: FeatureStoreSpec
    pipelines: tuple[PipelineSpec, ...]
    generate: Generator


def default_end() -> datetime:
    """Midnight UTC today: recent enough to materialize, stable across a day's runs."""
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def _days(end: pd.Timestamp) -> pd.DatetimeIndex:
    return pd.date_range(end=end, periods=HISTORY_DAYS, freq="D", tz="UTC")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _as_of(days: pd.DatetimeIndex, stamps: pd.Series) -> np.ndarray:
    """Index of the newest daily snapshot at or before each stamp."""
    return (
        np.searchsorted(days.asi8, stamps.astype("datetime64[ns, UTC]").astype("int64"), "right")
        - 1
    )


def _events(
    rng: np.random.Generator, days: pd.DatetimeIndex, n: int
) -> tuple[pd.Series, np.ndarray]:
    # Events fall after the first week of snapshots, so most have a feature value to join.
    first = days[7].value
    stamps = pd.to_datetime(rng.integers(first, days[-1].value, size=n), utc=True).floor("s")
    stamps = pd.Series(stamps)
    return stamps, _as_of(days, stamps)


def _fraud(rng: np.random.Generator, rows: int, end: pd.Timestamp) -> dict[str, pd.DataFrame]:
    days = _days(end)
    cards = max(rows // 10, 20)
    risk = np.cumsum(rng.normal(0, 0.35, size=(HISTORY_DAYS, cards)), axis=0) + rng.normal(
        0, 1, cards
    )
    base_amount = rng.lognormal(3.6, 0.5, cards)
    count = rng.poisson(4 + 3 * np.clip(risk, 0, None))
    avg = base_amount * np.exp(0.25 * risk) * rng.lognormal(0, 0.1, risk.shape)
    stats = pd.DataFrame(
        {
            "card_id": np.tile(np.arange(1, cards + 1, dtype="int64"), HISTORY_DAYS),
            "event_ts": np.repeat(days, cards),
            "txn_count_7d": count.ravel().astype("int64"),
            "avg_amount_7d": avg.ravel().round(2),
            "max_amount_7d": (avg * rng.uniform(1.2, 3.0, risk.shape)).ravel().round(2),
            "share_foreign_7d": _sigmoid(risk - 2 + rng.normal(0, 0.3, risk.shape))
            .ravel()
            .round(3),
        }
    )
    age_band = rng.choice(["18-25", "26-40", "41-60", "60+"], size=cards, p=[0.2, 0.35, 0.3, 0.15])
    card = rng.integers(0, cards, size=rows)
    stamps, snap = _events(rng, days, rows)
    amount = rng.lognormal(np.log(base_amount[card]), 0.7).round(2)
    r = risk[np.clip(snap, 0, None), card]
    logit = -3.2 + 1.1 * r + 0.9 * np.log(amount / avg[np.clip(snap, 0, None), card])
    labels = pd.DataFrame(
        {
            "card_id": (card + 1).astype("int64"),
            "event_ts": stamps,
            "amount": amount,
            "age_band": age_band[card],
            "is_fraud": (rng.uniform(size=rows) < _sigmoid(logit)).astype("int64"),
        }
    )
    return {"card_txn_stats/part-0.parquet": stats, "labels/fraud.parquet": labels}


def _recommendations(
    rng: np.random.Generator, rows: int, end: pd.Timestamp
) -> dict[str, pd.DataFrame]:
    days = _days(end)
    users, items = max(rows // 15, 20), max(rows // 30, 10)
    engagement = np.cumsum(rng.normal(0, 0.2, (HISTORY_DAYS, users)), axis=0) + rng.normal(
        0, 1, users
    )
    popularity = np.cumsum(rng.normal(0, 0.3, (HISTORY_DAYS, items)), axis=0) + rng.normal(
        0, 1, items
    )
    price = rng.lognormal(3, 0.8, items).round(2)
    user_stats = pd.DataFrame(
        {
            "user_id": np.tile(np.arange(1, users + 1, dtype="int64"), HISTORY_DAYS),
            "event_ts": np.repeat(days, users),
            "clicks_30d": rng.poisson(np.exp(2 + 0.5 * engagement)).ravel().astype("int64"),
            "avg_session_minutes": np.exp(1.5 + 0.3 * engagement).ravel().round(2),
            "days_active_30d": np.clip(15 + 6 * engagement, 0, 30).astype("int64").ravel(),
        }
    )
    item_stats = pd.DataFrame(
        {
            "item_id": np.tile(np.arange(1, items + 1, dtype="int64"), HISTORY_DAYS),
            "event_ts": np.repeat(days, items),
            "popularity_7d": rng.poisson(np.exp(3 + 0.6 * popularity)).ravel().astype("int64"),
            "price": np.tile(price, HISTORY_DAYS),
            "avg_rating": np.clip(3.5 + 0.4 * popularity, 1, 5).ravel().round(2),
        }
    )
    region = rng.choice(["north", "south", "east", "west"], size=users)
    user = rng.integers(0, users, size=rows)
    item = rng.integers(0, items, size=rows)
    stamps, snap = _events(rng, days, rows)
    snap = np.clip(snap, 0, None)
    logit = (
        -1.2
        + 0.8 * engagement[snap, user]
        + 0.7 * popularity[snap, item]
        - 0.3 * np.log(price[item] / 20)
    )
    labels = pd.DataFrame(
        {
            "user_id": (user + 1).astype("int64"),
            "item_id": (item + 1).astype("int64"),
            "event_ts": stamps,
            "user_region": region[user],
            "clicked": (rng.uniform(size=rows) < _sigmoid(logit)).astype("int64"),
        }
    )
    return {
        "user_stats/part-0.parquet": user_stats,
        "item_stats/part-0.parquet": item_stats,
        "labels/clicks.parquet": labels,
    }


def _forecasting(rng: np.random.Generator, rows: int, end: pd.Timestamp) -> dict[str, pd.DataFrame]:
    days = _days(end)
    horizon = HISTORY_DAYS - 28
    stores = max(rows // horizon, 10)
    size = rng.uniform(300, 3000, stores).round(0)
    base = size / 20 * rng.lognormal(0, 0.3, stores)
    weekday = np.array([0.9, 0.85, 0.9, 1.0, 1.2, 1.4, 1.1])[days.dayofweek.to_numpy()]
    promo = rng.uniform(size=(HISTORY_DAYS, stores)) < 0.15
    trend = np.exp(np.cumsum(rng.normal(0, 0.02, (HISTORY_DAYS, stores)), axis=0))
    demand = rng.poisson(base * trend * weekday[:, None] * np.where(promo, 1.5, 1.0)).astype(float)
    frame = pd.DataFrame(demand)
    avg7 = frame.rolling(7, min_periods=1).mean().to_numpy()
    avg28 = frame.rolling(28, min_periods=1).mean().to_numpy()
    promo7 = pd.DataFrame(promo.astype(float)).rolling(7, min_periods=1).mean().to_numpy()
    stats = pd.DataFrame(
        {
            "store_id": np.tile(np.arange(1, stores + 1, dtype="int64"), HISTORY_DAYS),
            "event_ts": np.repeat(days, stores),
            "sales_avg_7d": avg7.ravel().round(2),
            "sales_avg_28d": avg28.ravel().round(2),
            "promo_share_7d": promo7.ravel().round(3),
            "store_size_sqm": np.tile(size, HISTORY_DAYS),
        }
    )
    # Each label is a day's demand, predicted from the snapshot of the evening before.
    day_index = np.repeat(np.arange(HISTORY_DAYS - horizon, HISTORY_DAYS), stores)
    store_index = np.tile(np.arange(stores), horizon)
    labels = pd.DataFrame(
        {
            "store_id": (store_index + 1).astype("int64"),
            "event_ts": days[day_index - 1] + pd.Timedelta(hours=23),
            "units_sold": demand[day_index, store_index],
        }
    )
    return {"store_sales_stats/part-0.parquet": stats, "labels/demand.parquet": labels}


TEAMS: dict[str, DemoTeam] = {
    "fraud": DemoTeam(
        name="fraud",
        feature_store=FeatureStoreSpec.model_validate(
            {
                "entities": [{"name": "card", "joinKey": "card_id"}],
                "featureViews": [
                    {
                        "name": "card_txn_stats",
                        "entities": ["card"],
                        "ttl": "3d",
                        "source": {"path": "card_txn_stats/", "timestampField": "event_ts"},
                        "features": {
                            "txn_count_7d": "int64",
                            "avg_amount_7d": "float64",
                            "max_amount_7d": "float64",
                            "share_foreign_7d": "float64",
                        },
                    }
                ],
            }
        ),
        pipelines=(
            PipelineSpec.model_validate(
                {
                    "name": "fraud-model",
                    "task": "classification",
                    "estimator": {"kind": "histGradientBoosting", "params": {"max_iter": 60}},
                    "labels": {"path": "labels/fraud.parquet", "target": "is_fraud"},
                    "features": [
                        "card_txn_stats:txn_count_7d",
                        "card_txn_stats:avg_amount_7d",
                        "card_txn_stats:max_amount_7d",
                        "card_txn_stats:share_foreign_7d",
                    ],
                    "protectedAttribute": "age_band",
                    "gates": {"minimum": 0.6, "maxFairnessGap": 0.25, "maxRegression": 0.02},
                    "checks": {"ranges": {"avg_amount_7d": {"min": 0}, "amount": {"min": 0}}},
                }
            ),
        ),
        generate=_fraud,
    ),
    "recommendations": DemoTeam(
        name="recommendations",
        feature_store=FeatureStoreSpec.model_validate(
            {
                "entities": [
                    {"name": "user", "joinKey": "user_id"},
                    {"name": "item", "joinKey": "item_id"},
                ],
                "featureViews": [
                    {
                        "name": "user_stats",
                        "entities": ["user"],
                        "ttl": "3d",
                        "source": {"path": "user_stats/"},
                        "features": {
                            "clicks_30d": "int64",
                            "avg_session_minutes": "float64",
                            "days_active_30d": "int64",
                        },
                    },
                    {
                        "name": "item_stats",
                        "entities": ["item"],
                        "ttl": "3d",
                        "source": {"path": "item_stats/"},
                        "features": {
                            "popularity_7d": "int64",
                            "price": "float64",
                            "avg_rating": "float64",
                        },
                    },
                ],
            }
        ),
        pipelines=(
            PipelineSpec.model_validate(
                {
                    "name": "click-model",
                    "estimator": {"kind": "logisticRegression", "params": {"C": 1.0}},
                    "labels": {"path": "labels/clicks.parquet", "target": "clicked"},
                    "features": [
                        "user_stats:clicks_30d",
                        "user_stats:avg_session_minutes",
                        "user_stats:days_active_30d",
                        "item_stats:popularity_7d",
                        "item_stats:price",
                        "item_stats:avg_rating",
                    ],
                    "protectedAttribute": "user_region",
                    "fairnessMetric": "equalizedOdds",
                    "gates": {"minimum": 0.6, "maxFairnessGap": 0.3},
                }
            ),
        ),
        generate=_recommendations,
    ),
    "forecasting": DemoTeam(
        name="forecasting",
        feature_store=FeatureStoreSpec.model_validate(
            {
                "entities": [{"name": "store", "joinKey": "store_id"}],
                "featureViews": [
                    {
                        "name": "store_sales_stats",
                        "entities": ["store"],
                        "ttl": "2d",
                        "source": {"path": "store_sales_stats/"},
                        "features": {
                            "sales_avg_7d": "float64",
                            "sales_avg_28d": "float64",
                            "promo_share_7d": "float64",
                            "store_size_sqm": "float64",
                        },
                    }
                ],
            }
        ),
        pipelines=(
            PipelineSpec.model_validate(
                {
                    "name": "demand-forecast",
                    "task": "regression",
                    "estimator": {"kind": "randomForest", "params": {"n_estimators": 40}},
                    "labels": {"path": "labels/demand.parquet", "target": "units_sold"},
                    "features": [
                        "store_sales_stats:sales_avg_7d",
                        "store_sales_stats:sales_avg_28d",
                        "store_sales_stats:promo_share_7d",
                        "store_sales_stats:store_size_sqm",
                    ],
                    "gates": {"metric": "r2", "minimum": 0.5},
                    "checks": {"ranges": {"units_sold": {"min": 0}}},
                }
            ),
        ),
        generate=_forecasting,
    ),
}


def demo_team(team: str) -> DemoTeam:
    """The example team called ``team`` (fraud, recommendations, forecasting)."""
    try:
        return TEAMS[team]
    except KeyError:
        raise ConfigurationError(
            f"no demo data for team {team!r}; choose one of {', '.join(TEAMS)}"
        ) from None


def generate(
    team: str, *, seed: int = DEFAULT_SEED, rows: int = DEFAULT_ROWS, end: datetime | None = None
) -> dict[str, pd.DataFrame]:
    """Relative parquet path -> dataframe (feature snapshots and labels) for ``team``."""
    if rows < 100:
        raise ConfigurationError(f"demo data needs at least 100 rows, got {rows}")
    stamp = pd.Timestamp(end or default_end())
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return demo_team(team).generate(np.random.default_rng(seed), rows, stamp)


def write_demo_data(
    settings: Settings,
    team: str,
    *,
    seed: int = DEFAULT_SEED,
    rows: int = DEFAULT_ROWS,
    end: datetime | None = None,
) -> dict[str, str]:
    """Write ``team``'s demo data under the offline store of ``settings``; path -> URI written."""
    frames = generate(team, seed=seed, rows=rows, end=end)
    return {path: write_parquet(settings, frame, path) for path, frame in frames.items()}


def demo_settings(team: str, **values: object) -> Settings:
    """Settings of a demo team: its feature store and pipelines, plus ``values``."""
    declared = demo_team(team)
    defaults: dict[str, object] = {
        "team": team,
        "feature_store": declared.feature_store,
        "pipelines": list(declared.pipelines),
        "metrics_namespace": f"MLOps/{team}",
    }
    return Settings(**(defaults | values))  # type: ignore[arg-type]
