"""Online feature lookups: inputs a request leaves out, read from Feast by entity key."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from runtime.settings import Settings


class OnlineFeatures:
    """Feast's online store for the team's feature store (opened on first use)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._store: Any = None
        self._lock = threading.Lock()

    def _feast(self) -> Any:
        with self._lock:
            if self._store is None:
                from runtime.features import open_store

                self._store = open_store(self._settings)
            return self._store

    def lookup(
        self, refs: Sequence[str], entity_rows: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Values of ``refs`` (`view:feature`) for each entity row, keyed by feature name."""
        found = (
            self._feast()
            .get_online_features(features=list(refs), entity_rows=list(entity_rows))
            .to_dict()
        )
        names = [ref.split(":", 1)[1] for ref in refs]
        return [{name: found[name][i] for name in names} for i in range(len(entity_rows))]
