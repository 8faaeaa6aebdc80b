"""Errors the runtime reports to a user as one paragraph, without a traceback."""

from __future__ import annotations


class RuntimeUserError(Exception):
    """A problem the user can fix (config, input data); the CLI prints it and exits non-zero."""

    exit_code = 1


class ConfigurationError(RuntimeUserError):
    """Settings or specs that cannot work (unknown pipeline, incompatible estimator, ...)."""


class DataCheckError(RuntimeUserError):
    """Input data failed its checks; ``failures`` lists every one, ``outcome`` what the command
    therefore did not do (e.g. "Nothing was registered.")."""

    def __init__(self, where: str, failures: list[str], *, outcome: str = "") -> None:
        self.where = where
        self.failures = failures
        listed = "; ".join(failures)
        super().__init__(f"data checks failed for {where}: {listed}." + f" {outcome}".rstrip())


class GateFailure(RuntimeUserError):
    """A trained model did not pass its quality or fairness gates."""

    exit_code = 3

    def __init__(self, model: str, reasons: list[str], run_id: str) -> None:
        self.model = model
        self.reasons = reasons
        self.run_id = run_id
        super().__init__(
            f"model {model!r} failed its gates: {'; '.join(reasons)}. The run {run_id} keeps its "
            "metrics and model for inspection; no version was registered and the aliases are "
            "unchanged."
        )


class RegistryError(RuntimeUserError):
    """A promotion or rollback that cannot be done (no challenger, no previous champion)."""
