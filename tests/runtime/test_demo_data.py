"""Demo data: deterministic, realistic shapes, consistent with the declared specs."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from runtime.demo_data import TEAMS, generate
from runtime.errors import ConfigurationError

END = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize("team", sorted(TEAMS))
def test_same_seed_same_data(team: str) -> None:
    first = generate(team, seed=3, rows=500, end=END)
    again = generate(team, seed=3, rows=500, end=END)
    other = generate(team, seed=4, rows=500, end=END)

    for path, frame in first.items():
        pd.testing.assert_frame_equal(frame, again[path])
    assert any(not frame.equals(other[path]) for path, frame in first.items())


@pytest.mark.parametrize("team", sorted(TEAMS))
def test_data_matches_the_declared_specs(team: str) -> None:
    declared = TEAMS[team]
    frames = generate(team, rows=500, end=END)

    for view in declared.feature_store.feature_views:
        frame = frames[f"{view.source.path}part-0.parquet"]
        assert set(view.features) <= set(frame.columns)
        assert frame[view.source.timestamp_field].max() == pd.Timestamp(END)
    for pipeline in declared.pipelines:
        labels = frames[pipeline.labels.path]
        assert len(labels) >= 450
        assert labels[pipeline.labels.target].notna().all()
        if pipeline.protected_attribute:
            assert labels[pipeline.protected_attribute].nunique() > 1


def test_unknown_team_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="no demo data for team 'ads'"):
        generate("ads")
