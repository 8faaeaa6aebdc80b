"""Feast on embedded defaults: definitions, materialization, point-in-time training sets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runtime import features
from runtime.errors import ConfigurationError, DataCheckError
from runtime.settings import Settings
from runtime.spec import FeatureStoreSpec, PipelineSpec
from runtime.storage import write_parquet
from runtime.train import training_set
from tests.runtime.conftest import Team

START = datetime(2025, 1, 1, tzinfo=UTC)


def test_definitions_follow_the_spec(embedded: Team) -> None:
    definitions = {d.name: d for d in features.feature_definitions(embedded.settings)}

    view = definitions["card_txn_stats"]
    assert view.entities == ["card"]
    assert [f.name for f in view.features] == [
        "txn_count_7d",
        "avg_amount_7d",
        "max_amount_7d",
        "share_foreign_7d",
    ]
    assert view.ttl == timedelta(days=3)
    assert (
        view.batch_source.path
        == embedded.uris["card_txn_stats/part-0.parquet"].rsplit("/", 1)[0] + "/"
    )


def test_unknown_entity_is_a_configuration_error(tmp_path: Path) -> None:
    spec = FeatureStoreSpec.model_validate(
        {
            "featureViews": [
                {
                    "name": "v1",
                    "entities": ["card"],
                    "source": {"path": "v1/"},
                    "features": {"x": "int64"},
                }
            ]
        }
    )
    with pytest.raises(ConfigurationError, match=r"unknown entit\(ies\) \['card'\]"):
        features.feature_definitions(Settings(home=tmp_path, feature_store=spec))


def test_materialize_fills_the_online_store_and_reports_freshness(embedded: Team) -> None:
    settings = embedded.settings

    [fresh] = features.materialize(settings)

    assert fresh.feature_view == "card_txn_stats"
    assert fresh.age_seconds is not None and 0 <= fresh.age_seconds < 2 * 86400
    online = (
        features.open_store(settings)
        .get_online_features(
            features=["card_txn_stats:txn_count_7d", "card_txn_stats:avg_amount_7d"],
            entity_rows=[{"card_id": 1}, {"card_id": 2}],
        )
        .to_dict()
    )
    assert all(value is not None for value in online["avg_amount_7d"])
    published = [
        json.loads(line)
        for line in (settings.home / "metrics" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [(m["metric"], m["dimensions"]) for m in published] == [
        ("FeatureFreshness", {"FeatureView": "card_txn_stats"})
    ]


def test_wrong_feature_source_types_are_reported_before_apply(embedded: Team) -> None:
    frame = pd.read_parquet(embedded.uris["card_txn_stats/part-0.parquet"])
    frame["txn_count_7d"] = frame["txn_count_7d"].astype(str)
    frame = frame.drop(columns=["share_foreign_7d"])
    write_parquet(embedded.settings, frame, "card_txn_stats/part-0.parquet")

    with pytest.raises(DataCheckError) as raised:
        features.apply(embedded.settings)

    assert raised.value.failures == [
        f"card_txn_stats ({embedded.settings.home.resolve()}/offline/card_txn_stats/): "
        "column 'txn_count_7d' is string, expected int64",
        f"card_txn_stats ({embedded.settings.home.resolve()}/offline/card_txn_stats/): "
        "missing column 'share_foreign_7d'",
    ]


def _observations(tmp_path: Path) -> tuple[Settings, PipelineSpec, pd.DataFrame]:
    """Feature values that carry their own timestamp, and labels at random times between them."""
    rng = np.random.default_rng(11)
    cards = 20
    stamps = START + pd.to_timedelta(np.sort(rng.integers(0, 10 * 86400, 600)), unit="s")
    observed = pd.DataFrame(
        {
            "card_id": rng.integers(1, cards + 1, 600).astype("int64"),
            "event_ts": stamps,
        }
    )
    observed["observed_at"] = observed["event_ts"].astype("int64") // 10**9
    label_ts = START + pd.to_timedelta(rng.integers(0, 11 * 86400, 400), unit="s")
    labels = pd.DataFrame(
        {
            "card_id": rng.integers(1, cards + 1, 400).astype("int64"),
            "event_ts": pd.Series(label_ts).dt.tz_convert("UTC"),
            "label": rng.integers(0, 2, 400).astype("int64"),
        }
    )
    spec = FeatureStoreSpec.model_validate(
        {
            "entities": [{"name": "card", "joinKey": "card_id"}],
            "featureViews": [
                {
                    "name": "observations",
                    "entities": ["card"],
                    "ttl": "30d",
                    "source": {"path": "observations/"},
                    "features": {"observed_at": "int64"},
                }
            ],
        }
    )
    pipeline = PipelineSpec.model_validate(
        {
            "name": "pit",
            "labels": {"path": "labels/pit.parquet", "target": "label"},
            "features": ["observations:observed_at"],
            "checks": {"maxNullFraction": 1.0},
        }
    )
    settings = Settings(home=tmp_path, team="pit", feature_store=spec, pipelines=[pipeline])
    write_parquet(settings, observed, "observations/part-0.parquet")
    write_parquet(settings, labels, "labels/pit.parquet")
    return settings, pipeline, observed


def test_no_feature_value_from_after_the_label_reaches_training(tmp_path: Path) -> None:
    settings, pipeline, observed = _observations(tmp_path)

    frame = training_set(settings, pipeline)

    label_epoch = frame["event_ts"].astype("int64") // 10**9
    joined = frame["observed_at"]
    assert (joined.dropna() <= label_epoch[joined.notna()]).all()
    # And it is exactly the newest value at or before the label, per card.
    expected = [
        observed.loc[
            (observed.card_id == card) & (observed.observed_at <= stamp), "observed_at"
        ].max()
        for card, stamp in zip(frame["card_id"], label_epoch, strict=True)
    ]
    np.testing.assert_array_equal(joined.to_numpy(dtype=float), np.array(expected, dtype=float))
    assert joined.notna().sum() > 300


@pytest.mark.parametrize("shares", [1, 2, 3, 5])
def test_materialization_shares_deal_every_online_view_to_exactly_one_share(
    shares: int, tmp_path: Path
) -> None:
    views = [
        {
            "name": f"v{i}",
            "entities": ["card"],
            "online": i % 3 != 2,
            "source": {"path": f"v{i}/"},
            "features": {"x": "int64"},
        }
        for i in range(7)
    ]
    spec = FeatureStoreSpec.model_validate(
        {"entities": [{"name": "card", "joinKey": "card_id"}], "featureViews": views}
    )
    settings = Settings(home=tmp_path, feature_store=spec, materialize_shards=shares)

    dealt = [[v.name for v in features.views_of_share(settings, i)] for i in range(shares)]

    online = [v["name"] for v in views if v["online"]]
    assert sorted(name for share in dealt for name in share) == sorted(online)
    assert max(map(len, dealt)) - min(map(len, dealt)) <= 1
    with pytest.raises(ConfigurationError, match=rf"shard {shares} is not one of 0\.\."):
        features.views_of_share(settings, shares)


def test_a_share_materializes_only_its_views(embedded: Team) -> None:
    settings = embedded.settings.model_copy(update={"materialize_shards": 2})

    assert features.materialize(settings, shard=1) == []  # the one online view is share 0's
    store = features.open_store(settings)
    rows = [{"card_id": 1}]
    assert store.get_online_features(["card_txn_stats:txn_count_7d"], rows).to_dict()[
        "txn_count_7d"
    ] == [None]

    [fresh] = features.materialize(settings, shard=0)

    assert fresh.feature_view == "card_txn_stats"
    online = store.get_online_features(["card_txn_stats:txn_count_7d"], rows).to_dict()
    assert online["txn_count_7d"] != [None]
