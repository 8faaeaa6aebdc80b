"""The versions being served: loaded in the background, hot-swapped when a registry alias moves."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from runtime.metrics import VARIANT_CHALLENGER, VARIANT_CHAMPION
from runtime.serving.model import ModelSource, ServedModel

POLL_SECONDS = 10.0
"""How often the registry aliases are checked for a new version."""
RETRY_LOAD_SECONDS = 60.0
"""How long a version that failed to load is left alone before the next attempt."""
_log = logging.getLogger(__name__)

ALIASES = {VARIANT_CHAMPION: "champion", VARIANT_CHALLENGER: "challenger"}
"""Variant -> the registry alias it serves."""
FALLBACK = {VARIANT_CHALLENGER: VARIANT_CHAMPION}
"""Variant -> the variant it answers as while its own alias points to no version, in a holder
that does not hold that variant itself: a SageMaker challenger variant, which exists (and takes
its share or copy of the traffic) before any challenger does. A holder with both lets the
process's split send everything to the champion instead."""


@dataclass(frozen=True)
class Slot:
    """What one variant serves right now."""

    model: ServedModel | None = None
    error: str | None = None
    """Why the version the alias points to is not served (load failure, no version)."""
    answers_as: str | None = None
    """The variant ``model`` answers as: the slot's own, or its fallback's (FALLBACK)."""


class ModelHolder:
    """Champion (and, for canary/shadow, challenger) versions, or the one alias a SageMaker
    variant serves (``variants=(VARIANT_CHALLENGER,)``); swapped atomically on alias change.
    A challenger held alone serves the champion's version while no challenger exists, as the
    champion (FALLBACK), and switches on the poll after the alias appears or goes.

    ``on_swap(variant, model, answers_as)`` hears of every change of what the ``variant`` slot
    serves: ``model`` answering as ``answers_as``, or None when the alias was removed.
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
        on_swap: Callable[[str, ServedModel | None, str], None] | None = None,
    ) -> None:
        self._source = source
        self._variants = variants
        self._fallback = {
            v: FALLBACK[v] for v in variants if v in FALLBACK and FALLBACK[v] not in variants
        }
        self._poll_seconds = poll_seconds
        self._on_swap = on_swap
        self._slots: dict[str, Slot] = {variant: Slot() for variant in variants}
        self._failed: dict[str, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.tried = threading.Event()
        """Set once every alias was resolved and loaded (or failed to) for the first time."""

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
            try:
                self.refresh()
            finally:
                self.tried.set()
            self._stop.wait(self._poll_seconds)

    def _refresh(self, variant: str) -> None:
        alias = ALIASES[variant]
        fallback = self._fallback.get(variant)
        current = self._slots[variant]
        try:
            version, answers_as = self._source.version_of(alias), variant
            if version is None and fallback is not None:
                version, answers_as = self._source.version_of(ALIASES[fallback]), fallback
        except Exception as error:
            # The registry is unreachable: keep serving what is loaded.
            _log.warning("cannot resolve alias %r: %s", alias, _short(error))
            self._slots[variant] = replace(current, error=f"registry unreachable: {_short(error)}")
            return
        if version is None:
            nor = f" (nor does {ALIASES[fallback]!r})" if fallback is not None else ""
            self._slots[variant] = Slot(None, f"the {alias!r} alias points to no version{nor}")
            if current.model is not None:
                _log.info("%s alias removed: no longer serving %s", alias, current.model.version)
                if self._on_swap is not None:
                    self._on_swap(variant, None, variant)
            return
        # Serving the fallback's version is no error, but /ready says why.
        note = (
            None
            if answers_as == variant
            else f"the {alias!r} alias points to no version: the {answers_as} answers meanwhile"
        )
        if current.model is not None and current.model.version == version:
            if current.answers_as != answers_as:
                # The same version under the other alias (promoted, or demoted): relabelled.
                self._swapped(variant, current.model, answers_as, note, "relabelled")
            elif current.error != note:
                self._slots[variant] = Slot(current.model, note, answers_as)
            return
        failed = self._failed.get(variant)
        if failed and failed[0] == version and time.monotonic() - failed[1] < RETRY_LOAD_SECONDS:
            return
        try:
            loaded = self._source.load(version)
        except Exception as error:
            reason = f"version {version} ({ALIASES[answers_as]}) failed to load: {_short(error)}"
            _log.error(reason)
            self._failed[variant] = (version, time.monotonic())
            self._slots[variant] = replace(current, error=reason)
            return
        self._failed.pop(variant, None)
        self._swapped(variant, loaded, answers_as, note, f"loaded in {loaded.load_seconds:.1f}s")

    def _swapped(
        self, variant: str, model: ServedModel, answers_as: str, note: str | None, how: str
    ) -> None:
        self._slots[variant] = Slot(model, note, answers_as)
        _log.info(
            "serving %s version %s as %s (%s backend, %s)",
            model.name,
            model.version,
            answers_as,
            model.backend,
            how,
        )
        if self._on_swap is not None:
            self._on_swap(variant, model, answers_as)


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0][:300] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
