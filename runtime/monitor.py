"""`mlops-runtime monitor`: drift of an endpoint's traffic, its canary guard, and model age.

One run reads the prediction log of a time window and the training reference stored with the
champion's MLflow run, computes PSI and KS per feature and for the predictions
(``runtime.drift``), adds quality where labels have arrived, publishes the catalogue metrics,
and writes an HTML drift report under ``home/reports/<endpoint>/``.

The canary guard compares the challenger with the champion over the same window: error rate
(from the serving metrics in the sink) and p99 latency (from the prediction log). When the
challenger breaks the endpoint's SLO *and* does worse than the champion, the ``challenger`` alias
is pointed back at the champion's version, so serving routes the canary share to the champion
within one alias poll, and the alert topic is told. The champion alias is never touched.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from runtime import continuous, events, registry
from runtime import drift as drift_math
from runtime.errors import ConfigurationError, DataCheckError, RegistryError, RuntimeUserError
from runtime.metrics import (
    FEATURE_DRIFT,
    MAX_FEATURE_DRIFT,
    MODEL_AGE,
    PREDICTION_DRIFT,
    PREDICTION_ERRORS,
    VARIANT_CHALLENGER,
    VARIANT_CHAMPION,
    Dimension,
)
from runtime.monitor_result import (
    MIN_CANARY_REQUESTS,
    MIN_ROWS,
    CanaryVerdict,
    ChallengerDrift,
    MonitorResult,
    ServedVersion,
    VariantHealth,
)
from runtime.prediction_log import LogWindow, log_root, open_window
from runtime.publish import METRICS_FILE, publisher
from runtime.report import write_drift_report
from runtime.settings import Settings
from runtime.spec import DEFAULT_GATE_METRIC, EndpointSpec, PipelineSpec, Task, format_duration
from runtime.train import REFERENCE_ARTIFACT

DEFAULT_WINDOW = timedelta(hours=1)
TIMELINE_SPAN = timedelta(days=7)
TIMELINE_EVENTS = 30
"""The drift report shows at most this many continuous-training decisions of the last week."""
STREAM_BYTES = 512 * 2**20
"""Memory the features being measured may take: a big window's features are read and measured a
few at a time (a value costs about three float64: read, laid out for the math, sorted), a small
window's all at once (fewer requests)."""
REPORT_ROWS = 200_000
"""The drift report's histograms show at most this many of the window's rows (a uniform sample)."""
REPORTS_FOLDER = "reports"
PREDICTION_COLUMN = "prediction"
SCORE_COLUMN = "score"
CANARY_ROLLED_BACK_TAG = registry.CANARY_ROLLED_BACK_TAG
CANARY_REASON_TAG = registry.CANARY_REASON_TAG
CANARY_STARTED_TAG = "mlops.ct.canary_started"
"""Model-version tag: when the monitor first saw the version answer canary requests."""
PROMOTED_BY_TAG = "mlops.ct.promoted_by"
"""Model-version tag: the evidence an automatic promotion rested on."""
_log = logging.getLogger(__name__)


def monitor(
    settings: Settings,
    endpoint_name: str,
    *,
    window: timedelta = DEFAULT_WINDOW,
    end: datetime | None = None,
    labels: str | None = None,
    psi_threshold: float = drift_math.DEFAULT_PSI_THRESHOLD,
    bins: int = drift_math.DEFAULT_BINS,
    report: bool = True,
) -> MonitorResult:
    """Measure drift of ``endpoint_name``'s traffic over ``window``, guard its canary, publish."""
    endpoint = _endpoint(settings, endpoint_name)
    end = (end or datetime.now(UTC)).astimezone(UTC)
    start = end - window
    mlflow_client = registry.client(settings)
    champion = registry.alias_version(mlflow_client, endpoint.model, registry.CHAMPION)
    if champion is None:
        raise RuntimeUserError(
            f"model {endpoint.model!r} has no {registry.CHAMPION!r} version: nothing is served to "
            f"monitor (promote one with `mlops-runtime promote {endpoint.model}`)"
        )
    pipeline = _pipeline_of(settings, endpoint.model)
    reference = _reference(settings, champion.run_id, endpoint.model, str(champion.version))
    window = open_window(log_root(settings), start, end, settings=settings)
    # Request ids are many distinct strings: read them (and latencies) only for what needs them.
    canary = endpoint.canary is not None
    needs_ids = labels is not None or canary or _live_labels(settings, pipeline) is not None
    everything, answered = window_rows(
        window,
        endpoint.name,
        str(champion.version),
        columns=_monitor_columns(ids=needs_ids, latency=canary),
    )

    result = MonitorResult(
        endpoint=endpoint.name,
        model=endpoint.model,
        champion_version=str(champion.version),
        start=start,
        end=end,
        rows=len(answered),
        psi_threshold=psi_threshold,
        pipeline=pipeline.name if pipeline is not None else None,
        served=_served(mlflow_client, endpoint.model, everything),
    )
    logged = window.feature_names()
    names = _feature_names(pipeline, reference, logged)
    if result.measured:
        result.features = feature_drift(window, reference, answered.index, names, bins=bins)
        result.prediction = _prediction_drift(reference, answered, str(champion.version), bins)
    result.challenger = _challenger_drift(
        settings,
        mlflow_client,
        endpoint.model,
        str(champion.version),
        window,
        everything,
        pipeline,
        bins,
    )
    if labels and pipeline is not None:
        result.quality, result.labelled_rows = _quality(settings, labels, answered, pipeline)
    elif (arrived := _live_labels(settings, pipeline)) is not None and pipeline is not None:
        try:
            result.quality, result.labelled_rows = _quality(settings, arrived, answered, pipeline)
        except DataCheckError as error:
            # Labels arrive when they arrive: none yet is no verdict, not a failed monitor.
            _log.warning("no live quality this window: %s", error)
    ct = pipeline is not None and pipeline.continuous_training is not None
    if ct and continuous.is_held(mlflow_client, endpoint.model) is None:  # a hold changes nothing
        _note_canary_started(settings, mlflow_client, endpoint.model, str(champion.version), result)
    if endpoint.canary is not None:
        # Shadow rows are nobody's answer: the guard leaves them out either way.
        result.canary = _guard_canary(
            settings, endpoint, mlflow_client, everything, start, end, pipeline
        )
    result.model_ages = _model_ages(settings, mlflow_client, end)
    if pipeline is not None and pipeline.continuous_training is not None:
        # The evidence `train --if-due` judges its drift and decay triggers on.
        continuous.record_window(mlflow_client, pipeline, result)
        result.timeline = _timeline(settings, endpoint.model, end)
    result.published = _publish(settings, result)
    if report:
        shown = _report_rows(window, answered, names)
        result.report = write_drift_report(
            settings, result, reference, shown, names, _prediction_column(reference, answered)
        )
    return result


def feature_drift(
    window: LogWindow,
    reference: pd.DataFrame,
    rows: pd.Index | np.ndarray,
    names: list[str],
    *,
    bins: int = drift_math.DEFAULT_BINS,
) -> list[drift_math.ColumnDrift]:
    """Drift of features ``names`` over the logged ``rows`` (numbered as ``window.records``).

    The features are read as many at a time as ``STREAM_BYTES`` allows and dropped once
    measured; every column's figures are computed on its own, so they equal
    ``drift_math.drift`` over the whole frame.
    """
    rows = np.asarray(rows)
    results: list[drift_math.ColumnDrift] = []
    step = max(1, STREAM_BYTES // max(1, 3 * 8 * len(rows)))
    for first in range(0, len(names), step):
        group = names[first : first + step]
        current = window.features(group, rows)
        results += drift_math.drift(reference, current, group, bins=bins)
        del current
        # Arrow keeps freed buffers for reuse; the next group is numpy's.
        pa.default_memory_pool().release_unused()
    return results


def window_rows(
    window: LogWindow,
    endpoint: str,
    champion_version: str,
    *,
    columns: list[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The endpoint's answered (not shadow) rows of the window, and the champion's among them.

    A selection that keeps every row is the same frame, not a copy: a big window is held once.
    """
    log = window.records(columns or _monitor_columns(ids=False, latency=False))
    pa.default_memory_pool().release_unused()
    log = _where(log, log["endpoint"] == endpoint)
    everything = _where(log, ~log["shadow"].astype(bool))
    del log
    # The champion's reference judges the champion's rows only; a canary's rows are its own.
    answered = _where(
        everything,
        (everything["variant"] == VARIANT_CHAMPION)
        & (everything["model_version"] == champion_version),
    )
    return everything, answered


def _where(frame: pd.DataFrame, chosen: pd.Series) -> pd.DataFrame:
    return frame if chosen.all() else frame[chosen]


def _monitor_columns(*, ids: bool, latency: bool) -> list[str]:
    """The record columns monitor reads: who answered, what, and for the canary guard how fast."""
    columns = ["endpoint", "model_version", "variant", "shadow", "prediction", "score"]
    return columns + (["request_id"] if ids else []) + (["latency_ms"] if latency else [])


def _report_rows(window: LogWindow, answered: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The answered rows with their features, a uniform sample of them past REPORT_ROWS."""
    rows = answered
    if len(rows) > REPORT_ROWS:
        picked = np.sort(np.random.default_rng(0).choice(len(rows), REPORT_ROWS, replace=False))
        rows = rows.iloc[picked]
    features = window.features(names, rows.index.to_numpy()).set_axis(rows.index)
    return pd.concat([rows.drop(columns=[c for c in names if c in rows.columns]), features], axis=1)


def _note_canary_started(
    settings: Settings, mlflow_client: Any, model: str, champion: str, result: MonitorResult
) -> None:
    """The first window in which a challenger answered canary requests: one event per version."""
    for served in result.served:
        if served.variant != VARIANT_CHALLENGER or served.version == champion or not served.rows:
            continue
        try:
            tags = mlflow_client.get_model_version(model, served.version).tags or {}
        except Exception:
            continue
        if CANARY_STARTED_TAG in tags:
            continue
        mlflow_client.set_model_version_tag(
            model, served.version, CANARY_STARTED_TAG, result.end.isoformat(timespec="seconds")
        )
        events.record(
            settings,
            model,
            events.Kind.canary_started,
            f"version {served.version} answers its canary share on {result.endpoint} "
            f"({served.rows} row(s) in this window; champion version {champion})",
            version=served.version,
            by=f"mlops (monitor of {result.endpoint})",
            endpoint=result.endpoint,
        )


def _timeline(settings: Settings, model: str, end: datetime) -> list[events.Event]:
    try:
        return events.read(settings, model, since=end - TIMELINE_SPAN)[-TIMELINE_EVENTS:]
    except Exception as error:  # the report is worth having without its timeline
        _log.warning("cannot read the continuous-training events: %s", str(error)[:200])
        return []


def _answered_by(log: pd.DataFrame, variant: str, version: str) -> pd.DataFrame:
    if log.empty:
        return log
    return log[(log["variant"] == variant) & (log["model_version"] == version)]


def _served(mlflow_client: Any, model: str, log: pd.DataFrame) -> list[ServedVersion]:
    if log.empty:
        return []
    counts = log.groupby(["variant", "model_version"], observed=True).size()
    served = []
    for (variant, version), rows in counts.items():
        try:
            found = mlflow_client.get_model_version(model, str(version))
            registered = datetime.fromtimestamp(int(found.creation_timestamp) / 1000, UTC)
        except Exception:
            registered = None
        served.append(ServedVersion(str(variant), str(version), int(rows), registered))
    return sorted(served, key=lambda s: (s.variant != VARIANT_CHAMPION, s.variant, s.version))


def _challenger_drift(
    settings: Settings,
    mlflow_client: Any,
    model: str,
    champion_version: str,
    window: LogWindow,
    log: pd.DataFrame,
    pipeline: PipelineSpec | None,
    bins: int,
) -> ChallengerDrift | None:
    challenger = registry.alias_version(mlflow_client, model, registry.CHALLENGER)
    if challenger is None or str(challenger.version) == champion_version:
        return None
    version = str(challenger.version)
    rows = _answered_by(log, VARIANT_CHALLENGER, version)
    result = ChallengerDrift(version, len(rows))
    if len(rows) >= MIN_ROWS:
        reference = _reference(settings, challenger.run_id, model, version)
        names = _feature_names(pipeline, reference, window.feature_names())
        result.features = feature_drift(window, reference, rows.index, names, bins=bins)
    return result


def _endpoint(settings: Settings, name: str) -> EndpointSpec:
    endpoint = settings.endpoint
    if endpoint is None:
        raise ConfigurationError(
            f"no endpoint to monitor: set MLOPS_ENDPOINT (e.g. "
            f'\'{{"name": "{name}", "model": "<registered model>"}}\')'
        )
    if endpoint.name != name:
        raise ConfigurationError(
            f"--endpoint {name!r} is not the endpoint this job is configured for "
            f"({endpoint.name!r}, MLOPS_ENDPOINT)"
        )
    return endpoint


def _pipeline_of(settings: Settings, model: str) -> PipelineSpec | None:
    return next((p for p in settings.pipelines if p.model_name == model), None)


def _reference(settings: Settings, run_id: str | None, model: str, version: str) -> pd.DataFrame:
    import mlflow

    where = f"the training reference of {model} version {version} (run {run_id})"
    with (
        tempfile.TemporaryDirectory() as folder,
        warnings.catch_warnings(),
        # MLflow draws a download progress bar; a job's log wants the outcome only.
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=REFERENCE_ARTIFACT,
                dst_path=folder,
                tracking_uri=registry.tracking_uri(settings),
            )
            return pd.read_parquet(path)
        except Exception as error:
            detail = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
            raise DataCheckError(where, [f"cannot read {REFERENCE_ARTIFACT} ({detail})"]) from None


def _feature_names(
    pipeline: PipelineSpec | None, reference: pd.DataFrame, logged: list[str]
) -> list[str]:
    if pipeline is not None:
        declared = [ref.split(":", 1)[1] for ref in pipeline.features]
    else:
        skip = {PREDICTION_COLUMN, SCORE_COLUMN}
        declared = [c for c in reference.columns if c not in skip]
    present = set(logged)
    return [name for name in declared if name in reference.columns and name in present]


def _prediction_column(reference: pd.DataFrame, current: pd.DataFrame) -> str | None:
    """The score (probability) of a classifier, else the prediction itself."""
    for column in (SCORE_COLUMN, PREDICTION_COLUMN):
        if column in reference.columns and column in current.columns:
            if column == SCORE_COLUMN and current[column].isna().all():
                continue
            return column
    return None


def _prediction_drift(
    reference: pd.DataFrame, answered: pd.DataFrame, champion_version: str, bins: int
) -> drift_math.ColumnDrift | None:
    column = _prediction_column(reference, answered)
    if column is None:
        return None
    # The reference holds the champion's own predictions: compare with what the champion answered.
    mine = answered[
        (answered["variant"] == VARIANT_CHAMPION) & (answered["model_version"] == champion_version)
    ]
    if len(mine) < MIN_ROWS:
        return None
    current = pd.DataFrame({column: _numeric(mine[column])})
    base = pd.DataFrame({column: _numeric(reference[column])})
    return drift_math.drift(base, current, [column], bins=bins)[0]


def _numeric(values: pd.Series) -> pd.Series:
    converted = pd.to_numeric(values, errors="coerce")
    return values if converted.isna().all() and values.notna().any() else converted


def _live_labels(settings: Settings, pipeline: PipelineSpec | None) -> str | None:
    """Where the pipeline's live labels arrive (`continuousTraining.liveLabels`), if anywhere."""
    from runtime.storage import offline_uri

    ct = pipeline.continuous_training if pipeline is not None else None
    if ct is None or ct.live_labels is None:
        return None
    return offline_uri(settings, ct.live_labels)


def _quality(
    settings: Settings, labels: str, answered: pd.DataFrame, pipeline: PipelineSpec
) -> tuple[dict[str, float], int]:
    """Quality of the answered rows whose labels have arrived (joined on ``request_id``)."""
    from sklearn import metrics as sk

    from runtime.storage import storage_options

    target = pipeline.labels.target
    try:
        frame = pd.read_parquet(labels, storage_options=storage_options(settings, labels))
    except (FileNotFoundError, OSError) as error:
        raise DataCheckError(f"the labels at {labels}", [str(error).splitlines()[0]]) from None
    missing = [c for c in ("request_id", target) if c not in frame.columns]
    if missing:
        raise DataCheckError(f"the labels at {labels}", [f"missing column(s) {missing}"])
    joined = answered[["request_id", PREDICTION_COLUMN, SCORE_COLUMN]].merge(
        frame[["request_id", target]].drop_duplicates("request_id", keep="last"), on="request_id"
    )
    joined = joined[joined[target].notna()]
    if joined.empty:
        return {}, 0
    truth = joined[target].to_numpy()
    predicted = pd.to_numeric(joined[PREDICTION_COLUMN], errors="coerce").to_numpy()
    if pipeline.task == Task.classification:
        truth, predicted = truth.astype(int), predicted.astype(int)
        quality = {
            "accuracy": float(sk.accuracy_score(truth, predicted)),
            "f1": float(sk.f1_score(truth, predicted, zero_division=0)),
        }
        scores = joined[SCORE_COLUMN].to_numpy(dtype=float)
        if len(np.unique(truth)) > 1 and np.isfinite(scores).all():
            quality["roc_auc"] = float(sk.roc_auc_score(truth, scores))
    else:
        rmse = float(sk.root_mean_squared_error(truth, predicted))
        quality = {
            "r2": float(sk.r2_score(truth, predicted)),
            "rmse": rmse,
            "neg_rmse": -rmse,
            "mae": float(sk.mean_absolute_error(truth, predicted)),
        }
    return quality, len(joined)


# --- canary guard ------------------------------------------------------------------------------


def _guard_canary(
    settings: Settings,
    endpoint: EndpointSpec,
    mlflow_client: Any,
    log: pd.DataFrame,
    start: datetime,
    end: datetime,
    pipeline: PipelineSpec | None = None,
) -> CanaryVerdict | None:
    champion = registry.alias_version(mlflow_client, endpoint.model, registry.CHAMPION)
    challenger = registry.alias_version(mlflow_client, endpoint.model, registry.CHALLENGER)
    if champion is None or challenger is None or challenger.version == champion.version:
        return None
    errors = _error_counts(settings, endpoint.name, start, end)
    health = {
        variant: _health(log, variant, str(version.version), errors)
        for variant, version in (
            (VARIANT_CHAMPION, champion),
            (VARIANT_CHALLENGER, challenger),
        )
    }
    verdict = CanaryVerdict(
        champion=health[VARIANT_CHAMPION],
        challenger=health[VARIANT_CHALLENGER],
        breaches=[],
        judged=health[VARIANT_CHALLENGER].requests >= MIN_CANARY_REQUESTS,
    )
    if verdict.judged:
        verdict.breaches = canary_breaches(verdict.champion, verdict.challenger, endpoint)
    # A hold means a person is in charge: measure and report, change nothing.
    hold = continuous.is_held(mlflow_client, endpoint.model)
    verdict.held_by = hold.by if hold else None
    ct = pipeline.continuous_training if pipeline is not None else None
    if not verdict.breaches and hold is None and ct is not None and ct.promotion is not None:
        assert pipeline is not None
        decision = _judge_promotion(
            settings, endpoint, pipeline, mlflow_client, champion, challenger, end
        )
        if decision.reject:
            verdict.breaches = decision.reasons
        elif decision.promote:
            verdict.promoted = _promote(settings, endpoint, challenger, decision)
            verdict.promotion = (
                f"promoted version {challenger.version}: {decision.evidence}"
                if verdict.promoted
                else f"not promoted: the aliases moved since it was judged ({decision.evidence})"
            )
        else:
            verdict.promotion = f"promotion waits: {'; '.join(decision.reasons)}"
    if verdict.breaches and hold is None:
        verdict.rolled_back = _roll_back_canary(
            settings, endpoint.model, str(challenger.version), verdict.breaches
        )
        if verdict.rolled_back:
            verdict.notified = _notify(settings, endpoint, verdict)
    return verdict


@dataclass
class PromotionDecision:
    promote: bool = False
    reject: bool = False
    """The challenger is worse than the champion: roll it back (and quarantine it)."""
    reasons: list[str] = field(default_factory=list)
    """Why it waits, or why it is rejected."""
    evidence: str = ""
    """What the promotion rests on, in a sentence."""


def _judge_promotion(
    settings: Settings,
    endpoint: EndpointSpec,
    pipeline: PipelineSpec,
    mlflow_client: Any,
    champion: Any,
    challenger: Any,
    end: datetime,
) -> PromotionDecision:
    """Has the challenger served long enough, with enough requests, and is it not worse than the
    champion (SLO over its canary; live quality within maxRegression where labels arrived)?

    Too little data means wait, never promote."""
    ct = pipeline.continuous_training
    assert ct is not None and ct.promotion is not None
    rule = ct.promotion
    version = str(challenger.version)
    tags = challenger.tags or {}
    if continuous.QUARANTINED_TAG in tags or registry.CANARY_ROLLED_BACK_TAG in tags:
        return PromotionDecision(
            reasons=[f"version {version} is quarantined (its canary failed): never automatically"]
        )
    started = datetime.fromtimestamp(int(challenger.creation_timestamp) / 1000, UTC)
    served = end - started
    if served < rule.observe:
        return PromotionDecision(
            reasons=[
                f"on its canary for {format_duration(_whole(served))} of "
                f"{format_duration(rule.observe)}"
            ]
        )
    # The canary so far (at most twice the observation time: a long wait reads a bounded log).
    since = max(started, end - 2 * rule.observe)
    log = open_window(log_root(settings), since, end, settings=settings).records()
    if not log.empty:
        log = log[(log["endpoint"] == endpoint.name) & ~log["shadow"].astype(bool)]
    errors = _error_counts(settings, endpoint.name, since, end)
    mine = _health(log, VARIANT_CHALLENGER, version, errors)
    theirs = _health(log, VARIANT_CHAMPION, str(champion.version), errors)
    if mine.requests < rule.min_requests:
        return PromotionDecision(
            reasons=[f"{mine.requests} of {rule.min_requests} challenger requests on its canary"]
        )
    if breaches := canary_breaches(theirs, mine, endpoint):
        return PromotionDecision(reject=True, reasons=breaches)
    evidence = (
        f"{mine.requests} requests over {format_duration(_whole(end - since))}, "
        f"p99 {_ms(mine.p99_latency_ms)} (champion {_ms(theirs.p99_latency_ms)})"
    )
    labels = _live_labels(settings, pipeline)
    if labels is None:
        return PromotionDecision(promote=True, evidence=evidence + "; no live labels configured")
    metric = pipeline.gates.metric or DEFAULT_GATE_METRIC[pipeline.task]
    try:
        quality = {
            variant: _quality(settings, labels, _answered_by(log, variant, v), pipeline)
            for variant, v in (
                (VARIANT_CHAMPION, str(champion.version)),
                (VARIANT_CHALLENGER, version),
            )
        }
    except DataCheckError as error:
        return PromotionDecision(reasons=[f"no live labels yet ({error})"])
    short = [
        f"{variant} has {rows} of {rule.min_labelled_rows} labelled rows"
        for variant, (_, rows) in quality.items()
        if rows < rule.min_labelled_rows
    ]
    if short:
        return PromotionDecision(reasons=short)
    ours, base = (
        quality[VARIANT_CHALLENGER][0].get(metric),
        quality[VARIANT_CHAMPION][0].get(metric),
    )
    if ours is None or base is None:
        return PromotionDecision(reasons=[f"live {metric} cannot be computed on the labels yet"])
    allowed = pipeline.gates.max_regression
    if ours < base - allowed:
        return PromotionDecision(
            reject=True,
            reasons=[
                f"challenger live {metric} {ours:.4f} is worse than the champion's {base:.4f} "
                f"by more than maxRegression {allowed:g}"
            ],
        )
    return PromotionDecision(
        promote=True, evidence=f"{evidence}; live {metric} {ours:.4f} (champion {base:.4f})"
    )


def _whole(value: timedelta) -> timedelta:
    return timedelta(seconds=max(1, int(value.total_seconds())))


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def _promote(
    settings: Settings, endpoint: EndpointSpec, challenger: Any, decision: PromotionDecision
) -> bool:
    """The same safe promote as `mlops-runtime promote`, of exactly the version judged."""
    version = str(challenger.version)
    try:
        promotion = registry.promote(settings, endpoint.model, expected=version)
    except RegistryError as error:
        _log.warning("automatic promotion skipped: %s", error)
        return False
    if not promotion.changed:
        return False
    mlflow_client = registry.client(settings)
    mlflow_client.set_model_version_tag(
        endpoint.model, version, PROMOTED_BY_TAG, f"monitor of {endpoint.name}: {decision.evidence}"
    )
    events.record(
        settings,
        endpoint.model,
        events.Kind.promoted,
        f"version {version} promoted over version {promotion.previous} after its canary on "
        f"{endpoint.name}: {decision.evidence}",
        version=version,
        by=f"mlops (monitor of {endpoint.name})",
        previous=promotion.previous,
    )
    return True


def canary_breaches(
    champion: VariantHealth, challenger: VariantHealth, endpoint: EndpointSpec
) -> list[str]:
    """What makes the challenger worse than the champion beyond the SLO: above the SLO limit
    and worse than the champion, for the error rate or the p99 latency."""
    slo = endpoint.slo
    found = []
    rate, base_rate = challenger.error_rate, champion.error_rate
    if rate is not None and rate > slo.max_error_rate and (base_rate is None or rate > base_rate):
        shown = "n/a" if base_rate is None else f"{base_rate:.2%}"
        found.append(
            f"challenger error rate {rate:.2%} is above the SLO of {slo.max_error_rate:.2%} "
            f"(champion {shown})"
        )
    p99, base_p99 = challenger.p99_latency_ms, champion.p99_latency_ms
    if p99 is not None and p99 > slo.p99_latency_ms and (base_p99 is None or p99 > base_p99):
        shown = "n/a" if base_p99 is None else f"{base_p99:.1f} ms"
        found.append(
            f"challenger p99 latency {p99:.1f} ms is above the SLO of {slo.p99_latency_ms:g} ms "
            f"(champion {shown})"
        )
    return found


def _health(
    log: pd.DataFrame, variant: str, version: str, errors: dict[str, int] | None
) -> VariantHealth:
    if log.empty:
        rows = log
    else:
        rows = log[
            (log["variant"] == variant)
            & (log["model_version"] == version)
            & ~log["shadow"].astype(bool)
        ]
    # Rows of one request share its latency: one value per request.
    requests = rows.assign(request=rows["request_id"].str.split("/").str[0]).drop_duplicates(
        "request"
    )
    latencies = requests["latency_ms"].to_numpy(dtype=float)
    return VariantHealth(
        variant=variant,
        version=version,
        requests=len(requests),
        errors=None if errors is None else errors.get(variant, 0),
        p99_latency_ms=float(np.percentile(latencies, 99)) if len(latencies) else None,
    )


def _error_counts(
    settings: Settings, endpoint: str, start: datetime, end: datetime
) -> dict[str, int] | None:
    """Failed requests per variant in the window, read back from the metrics sink."""
    try:
        if settings.metrics_sink == "file":
            return _file_error_counts(settings, endpoint, start, end)
        if settings.metrics_sink == "cloudwatch":
            return _cloudwatch_error_counts(settings, endpoint, start, end)
    except Exception as error:
        _log.warning("cannot read serving error counts: %s", str(error)[:200])
    return None


def _file_error_counts(
    settings: Settings, endpoint: str, start: datetime, end: datetime
) -> dict[str, int]:
    path = settings.home.resolve() / METRICS_FILE
    counts: dict[str, int] = {VARIANT_CHAMPION: 0, VARIANT_CHALLENGER: 0}
    if not path.exists():
        return counts
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            item = json.loads(line)
            dims = item.get("dimensions", {})
            if item.get("metric") != PREDICTION_ERRORS.name:
                continue
            if dims.get(str(Dimension.endpoint)) != endpoint:
                continue
            stamp = datetime.fromisoformat(item["timestamp"])
            if start <= stamp < end:
                variant = dims.get(str(Dimension.variant), "")
                counts[variant] = counts.get(variant, 0) + int(item["value"])
    return counts


def _cloudwatch_error_counts(
    settings: Settings, endpoint: str, start: datetime, end: datetime
) -> dict[str, int]:
    import boto3

    cloudwatch = boto3.client(
        "cloudwatch", region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url
    )
    # Whole minutes around the window: CloudWatch keeps counts at minute resolution.
    first = start.replace(second=0, microsecond=0)
    last = end.replace(second=0, microsecond=0) + timedelta(minutes=1)
    period = int((last - first).total_seconds())
    counts: dict[str, int] = {}
    for variant in (VARIANT_CHAMPION, VARIANT_CHALLENGER):
        answer = cloudwatch.get_metric_statistics(
            Namespace=settings.metrics_namespace,
            MetricName=PREDICTION_ERRORS.name,
            Dimensions=[
                {"Name": str(Dimension.endpoint), "Value": endpoint},
                {"Name": str(Dimension.variant), "Value": variant},
            ],
            StartTime=first,
            EndTime=last,
            Period=period,
            Statistics=["Sum"],
        )
        counts[variant] = int(sum(point["Sum"] for point in answer.get("Datapoints", [])))
    return counts


def _roll_back_canary(settings: Settings, model: str, version: str, reasons: list[str]) -> bool:
    """Point ``challenger`` at the champion's version, if it still names ``version``."""
    mlflow_client = registry.client(settings)
    with registry.registry_lock(settings, model):
        challenger = registry.alias_version(mlflow_client, model, registry.CHALLENGER)
        champion = registry.alias_version(mlflow_client, model, registry.CHAMPION)
        if challenger is None or str(challenger.version) != version or champion is None:
            # Someone moved the aliases since we looked: their decision stands.
            return False
        mlflow_client.set_model_version_tag(
            model, version, CANARY_ROLLED_BACK_TAG, datetime.now(UTC).isoformat(timespec="seconds")
        )
        mlflow_client.set_model_version_tag(model, version, CANARY_REASON_TAG, "; ".join(reasons))
        # Never promoted automatically again, whoever points the alias at it later.
        mlflow_client.set_model_version_tag(
            model, version, continuous.QUARANTINED_TAG, "; ".join(reasons)[:5000]
        )
        # Serving keeps a canary slot while the alias exists; aimed at the champion it is harmless.
        mlflow_client.set_registered_model_alias(model, registry.CHALLENGER, str(champion.version))
    summary = "; ".join(reasons)
    # The rollback notice below tells the topic; the log keeps both decisions.
    events.record(
        settings, model, events.Kind.rolled_back, f"canary rolled back: {summary}",
        version=version, by="mlops (monitor)", notify=False, champion=str(champion.version),
    )  # fmt: skip
    events.record(
        settings, model, events.Kind.quarantined,
        f"version {version} quarantined: never promoted automatically", version=version,
        by="mlops (monitor)", notify=False,
    )  # fmt: skip
    return True


def _notify(settings: Settings, endpoint: EndpointSpec, verdict: CanaryVerdict) -> bool:
    if not settings.alert_topic_arn:
        _log.warning("canary rolled back; no alert topic configured (MLOPS_ALERT_TOPIC_ARN)")
        return False
    import boto3

    sns = boto3.client(
        "sns", region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url
    )
    subject = f"[{settings.team}] canary of {endpoint.name} rolled back"
    body = {
        "event": "canary-rollback",
        "team": settings.team,
        "environment": settings.environment,
        "endpoint": endpoint.name,
        "model": endpoint.model,
        "challenger_version": verdict.challenger.version,
        "champion_version": verdict.champion.version,
        "reasons": verdict.breaches,
        # Continuous training's decisions this notice stands for (the event log has both).
        "decisions": [str(events.Kind.rolled_back), str(events.Kind.quarantined)],
        "challenger": _health_json(verdict.challenger),
        "champion": _health_json(verdict.champion),
    }
    try:
        sns.publish(
            TopicArn=settings.alert_topic_arn,
            Subject=subject[:100],
            Message=json.dumps(body, indent=2),
        )
    except Exception as error:
        _log.error("canary rolled back but the notification failed: %s", str(error)[:200])
        return False
    return True


def _health_json(health: VariantHealth) -> dict[str, Any]:
    return {
        "version": health.version,
        "requests": health.requests,
        "errors": health.errors,
        "error_rate": health.error_rate,
        "p99_latency_ms": health.p99_latency_ms,
    }


# --- model age and publishing ------------------------------------------------------------------


def _model_ages(settings: Settings, mlflow_client: Any, now: datetime) -> dict[str, float]:
    ages: dict[str, float] = {}
    for pipeline in settings.pipelines:
        versions = mlflow_client.search_model_versions(f"name = '{pipeline.model_name}'")
        if not versions:
            continue
        newest = max(int(v.creation_timestamp) for v in versions)
        ages[pipeline.name] = max(0.0, now.timestamp() - newest / 1000)
    return ages


def _publish(settings: Settings, result: MonitorResult) -> list[str]:
    published: list[str] = []
    endpoint = {Dimension.endpoint: result.endpoint}
    with publisher(settings) as sink:
        for column in result.features:
            if np.isfinite(column.psi):
                sink.publish(
                    FEATURE_DRIFT, column.psi, endpoint | {Dimension.feature: column.column}
                )
                published.append(FEATURE_DRIFT.name)
        if (largest := result.max_feature_psi) is not None:
            sink.publish(MAX_FEATURE_DRIFT, largest, endpoint)
            published.append(MAX_FEATURE_DRIFT.name)
        if result.prediction is not None and np.isfinite(result.prediction.psi):
            sink.publish(PREDICTION_DRIFT, result.prediction.psi, endpoint)
            published.append(PREDICTION_DRIFT.name)
        for pipeline, age in result.model_ages.items():
            sink.publish(MODEL_AGE, age, {Dimension.pipeline: pipeline})
            published.append(MODEL_AGE.name)
    return sorted(set(published))
