"""The scikit-learn estimator behind each `estimator.kind` and task, and whether its parameters
fit it: the runtime builds it, the stack config is checked against it before anything runs.

scikit-learn is imported only to check parameters (it is slow to import: seconds, more than
the rest of a stack's validation and plan), and not even then where a caller keeps the answers
found before (``answers``).
"""

from __future__ import annotations

import difflib
import importlib
import json
import re
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from runtime.spec import EstimatorKind, Scalar, Task

ESTIMATORS: dict[tuple[EstimatorKind, Task], str] = {
    (EstimatorKind.logistic_regression, Task.classification): "linear_model.LogisticRegression",
    (EstimatorKind.random_forest, Task.classification): "ensemble.RandomForestClassifier",
    (EstimatorKind.random_forest, Task.regression): "ensemble.RandomForestRegressor",
    (EstimatorKind.hist_gradient_boosting, Task.classification): (
        "ensemble.HistGradientBoostingClassifier"
    ),
    (
        EstimatorKind.hist_gradient_boosting,
        Task.regression,
    ): "ensemble.HistGradientBoostingRegressor",
    (EstimatorKind.linear_regression, Task.regression): "linear_model.LinearRegression",
}
"""(kind, task) -> `<sklearn module>.<class>`; a pair not listed cannot be trained."""

_MUST_BE = re.compile(r" must be (?P<allowed>.+)\. Got .* instead\.$", re.DOTALL)


def kinds_for(task: Task) -> list[str]:
    """The estimator kinds that can learn ``task``."""
    return sorted(str(kind) for kind, able in ESTIMATORS if able == task)


def estimator_class(kind: EstimatorKind, task: Task) -> Any:
    """The scikit-learn class for ``kind`` and ``task`` (KeyError when it cannot do the task)."""
    module, _, name = ESTIMATORS[kind, task].rpartition(".")
    return getattr(importlib.import_module(f"sklearn.{module}"), name)


answers: MutableMapping[str, list[list[str]]] | None = None
"""parameter_problems' answers found before, by its question, where a caller keeps them (the
plan cache does, in a store of their own for each version of scikit-learn and of this module);
None: scikit-learn answers every time."""


def parameter_problems(
    kind: EstimatorKind, task: Task, params: Mapping[str, Scalar]
) -> Iterator[tuple[str, str]]:
    """(parameter, what it should be) for each parameter the estimator does not take as given:
    an unknown name (with the closest known one), or a value outside scikit-learn's own
    constraints for it. A bool is not a number here, though Python lets it pass for one."""
    if not params or (kind, task) not in ESTIMATORS:
        return
    if answers is None:
        yield from _parameter_problems(kind, task, params)
        return
    # The parameters in their order (the problems come in it); JSON tells 1, 1.0 and true apart.
    question = json.dumps([str(kind), str(task), list(params.items())])
    if question not in answers:
        answers[question] = [list(p) for p in _parameter_problems(kind, task, params)]
    yield from [(name, allowed) for name, allowed in answers[question]]


def _parameter_problems(
    kind: EstimatorKind, task: Task, params: Mapping[str, Scalar]
) -> Iterator[tuple[str, str]]:
    from sklearn.utils._param_validation import (
        InvalidParameterError,
        validate_parameter_constraints,
    )

    cls = estimator_class(kind, task)
    known = sorted(cls().get_params())
    for name, value in params.items():
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"one of {', '.join(known)}"
            yield name, f"a parameter of {cls.__name__}; {hint}"
            continue
        constraints = cls._parameter_constraints.get(name, "no_validation")
        if constraints == "no_validation":
            continue
        takes_bool = any(c in ("boolean", bool) for c in constraints)
        shown = object() if isinstance(value, bool) and not takes_bool else value
        try:
            validate_parameter_constraints({name: constraints}, {name: shown}, cls.__name__)
        except InvalidParameterError as error:
            match = _MUST_BE.search(str(error))
            yield name, match.group("allowed") if match else str(error)
