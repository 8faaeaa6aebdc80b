"""The versions being served: loaded in the background, hot-swapped when a registry alias moves."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from runtime.metrics import VARIANT_CHALLENGER, VARIANT_CHAMPION
from runtime.serving.model import ModelSource, ServedModel

POLL_SECONDS = 10.0
"""How often the registry aliases are checked for a new version."""
RETRY_LOAD_SECONDS = 60.0
"""How long a version that failed to load is left alone before the next attempt."""
_log = logging.getLogger(__name__)

ALIASES = {VARIANT_CHAMPION: "champion", VARIANT_CHALLENGER: "challenger"}
"""Variant -> the registry alias it serves."""


@dataclass(frozen=True)
class Slot:
    """What one variant serves right now."""

    model: ServedModel | None = None
    error: str | None = None
    """Why the version the alias points to is not served (load failure, no version)."""


class ModelHolder:
    """Champion (and, for canary/shadow, challenger) versions, or the one alias a SageMaker
    variant serves (``variants=(VARIANT_CHALLENGER,)``); swapped atomically on alias change.

    ``on_swap(variant, model)`` hears of every change, ``model`` None when the alias was removed.
    A background thread resolves the aliases every ``poll_seconds`` and loads any new version
    before swapping it in, so requests never wait for a load and a version that fails to load
    leaves the previous one serving (or the endpoint not ready, if there is none).
    """

    def __init__(
        self,
        source: ModelSource,
        *,
        variants: tuple[str, ...] = (VARIANT_CHAMPION,),
        poll_seconds: float = POLL_SECONDS,
        on_swap: Callable[[str, ServedModel | None], None] | None = None,
    ) -> None:
        self._source = source
        self._variants = variants
        self._poll_seconds = poll_seconds
        self._on_swap = on_swap
        self._slots: dict[str, Slot] = {variant: Slot() for variant in variants}
        self._failed: dict[str, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self, variant: str) -> ServedModel | None:
        slot = self._slots.get(variant)
        return slot.model if slot else None

    def slot(self, variant: str) -> Slot:
        return self._slots.get(variant, Slot(error="not configured"))

    @property
    def variants(self) -> tuple[str, ...]:
        return self._variants

    @property
    def primary(self) -> str:
        """The variant that answers requests (the first one): the champion, or the one alias a
        SageMaker variant's process serves."""
        return self._variants[0]

    @property
    def ready(self) -> bool:
        return self.get(self.primary) is not None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="model-holder", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def refresh(self) -> None:
        """Resolve every alias once and load what changed (the poll loop calls this)."""
        for variant in self._variants:
            self._refresh(variant)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self._poll_seconds)

    def _refresh(self, variant: str) -> None:
        alias = ALIASES[variant]
        current = self._slots[variant]
        try:
            version = self._source.version_of(alias)
        except Exception as error:
            # The registry is unreachable: keep serving what is loaded.
            _log.warning("cannot resolve alias %r: %s", alias, _short(error))
            self._slots[variant] = Slot(current.model, f"registry unreachable: {_short(error)}")
            return
        if version is None:
            self._slots[variant] = Slot(None, f"the {alias!r} alias points to no version")
            if current.model is not None:
                _log.info("%s alias removed: no longer serving %s", alias, current.model.version)
                if self._on_swap is not None:
                    self._on_swap(variant, None)
            return
        if current.model is not None and current.model.version == version:
            if current.error:
                self._slots[variant] = Slot(current.model)
            return
        failed = self._failed.get(variant)
        if failed and failed[0] == version and time.monotonic() - failed[1] < RETRY_LOAD_SECONDS:
            return
        try:
            loaded = self._source.load(version)
        except Exception as error:
            reason = f"version {version} ({alias}) failed to load: {_short(error)}"
            _log.error(reason)
            self._failed[variant] = (version, time.monotonic())
            self._slots[variant] = Slot(current.model, reason)
            return
        self._failed.pop(variant, None)
        self._slots[variant] = Slot(loaded)
        _log.info(
            "serving %s version %s as %s (%s backend, loaded in %.1fs)",
            loaded.name,
            loaded.version,
            variant,
            loaded.backend,
            loaded.load_seconds,
        )
        if self._on_swap is not None:
            self._on_swap(variant, loaded)


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0][:300] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
