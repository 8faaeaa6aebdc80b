"""The infra suite runs on its own, against running workloads: `pytest tests/infra` after
`mlops rehearse STACK --keep` (or with `--hosts=kubectl://...` against a cluster). A plain
`pytest` over every test folder does not collect it: nothing is up at that point."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: also runs against a real cluster's pod (--hosts=kubectl://...)"
    )


def _named(config: pytest.Config) -> bool:
    """Was this folder (or a file in it) named on the command line?"""
    for arg in config.args:
        path = Path(arg.split("::", 1)[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.suffix == ".py" and not _named(config):
        return True
    return None
