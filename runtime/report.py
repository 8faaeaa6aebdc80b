"""The HTML drift report of a monitor run: one self-contained file (plots embedded as PNG).

A summary table (PSI, KS, verdict colour per feature and for the predictions), the canary
verdict, live quality, and per-feature reference-vs-current histograms drawn with matplotlib.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from runtime.drift import MODERATE_PSI, ColumnDrift
from runtime.monitor_result import MonitorResult
from runtime.settings import Settings

HISTOGRAM_BINS = 30
SMALLEST_PVALUE = 1e-16
"""Below this a p-value is shown as `<1e-16` (double precision cannot tell it from 0)."""
MAX_CATEGORIES = 15
_COLOURS = {"ok": "#1a7f37", "watch": "#b58100", "drift": "#cf222e", "none": "#6e7781"}
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1f2328; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; } td, th { padding: .3rem .7rem; border-bottom: 1px solid #d0d7de; }
th { text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { color: white; border-radius: .3rem; padding: .1rem .5rem; font-size: .85rem; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; } .plots figure { margin: 0; }
figcaption { font-size: .85rem; text-align: center; } .muted { color: #6e7781; }
"""


def report_path(settings: Settings, endpoint: str, at: datetime) -> Path:
    """``home/reports/<endpoint>/<UTC timestamp>.html``."""
    stamp = at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return settings.home.resolve() / "reports" / endpoint / f"{stamp}.html"


def verdict(psi: float, threshold: float) -> str:
    """ok / watch / drift (or none when it could not be computed)."""
    if not np.isfinite(psi):
        return "none"
    if psi >= threshold:
        return "drift"
    return "watch" if psi >= min(MODERATE_PSI, threshold) else "ok"


def write_drift_report(
    settings: Settings,
    result: MonitorResult,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: list[str],
    prediction_column: str | None,
) -> Path:
    """Write the report of ``result`` and return its path."""
    path = report_path(settings, result.endpoint, result.end)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_text(
        _document(result, reference, current, features, prediction_column), encoding="utf-8"
    )
    partial.replace(path)
    return path


def _document(
    result: MonitorResult,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: list[str],
    prediction_column: str | None,
) -> str:
    e = html.escape
    title = f"Drift report: {result.endpoint}"
    window = f"{result.start:%Y-%m-%d %H:%M} - {result.end:%Y-%m-%d %H:%M} UTC"
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>Model <b>{e(result.model)}</b>, champion version {e(result.champion_version)}; "
        f"window {e(window)}; {result.rows} row(s) the champion answered vs {len(reference)} "
        f"reference row(s) of its training; PSI threshold {result.psi_threshold:g}.</p>",
    ]
    if not result.measured:
        parts.append(
            "<p class='muted'>Too little traffic in the window to measure drift; "
            "nothing was published for it.</p>"
        )
    columns = list(result.features)
    if result.prediction is not None:
        columns.append(result.prediction)
    if columns:
        parts.append(_summary(columns, result))
        parts.append(_legend(result.psi_threshold))
    parts.append(_next_step(result))
    if result.challenger is not None:
        parts.append(_challenger(result))
    if result.canary is not None:
        parts.append(_canary(result))
    if result.quality:
        shown = ", ".join(f"{k} = {v:.4f}" for k, v in result.quality.items())
        parts.append(
            f"<h2>Quality</h2><p>{e(shown)} on {result.labelled_rows} labelled row(s).</p>"
        )
    if result.served:
        parts.append(_served(result))
    if result.timeline:
        parts.append(_timeline(result))
    if result.measured:
        parts.append("<h2>Distributions</h2><div class='plots'>")
        by_name = {c.column: c for c in result.features}
        for name in features:
            if name in by_name:
                parts.append(_figure(name, reference[name], current[name], by_name[name], result))
        if result.prediction is not None and prediction_column:
            parts.append(
                _figure(
                    f"{prediction_column} (predictions)",
                    reference[prediction_column],
                    current[prediction_column],
                    result.prediction,
                    result,
                )
            )
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _summary(columns: list[ColumnDrift], result: MonitorResult) -> str:
    rows = []
    for column in columns:
        label = verdict(column.psi, result.psi_threshold)
        ks = "" if column.ks_statistic is None else f"{column.ks_statistic:.4f}"
        pvalue = "" if column.ks_pvalue is None else html.escape(format_pvalue(column.ks_pvalue))
        name = column.column if column is not result.prediction else f"{column.column} (prediction)"
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{column.kind}</td>"
            f"<td class='num'>{column.psi:.4f}</td><td class='num'>{ks}</td>"
            f"<td class='num'>{pvalue}</td><td class='num'>{column.current_rows}</td>"
            f"<td><span class='verdict' style='background:{_COLOURS[label]}'>{label}</span></td></tr>"
        )
    return (
        "<h2>Summary</h2><table><tr><th>column</th><th>kind</th><th>PSI</th><th>KS</th>"
        "<th>KS p-value</th><th>rows</th><th>verdict</th></tr>" + "".join(rows) + "</table>"
    )


def format_pvalue(value: float) -> str:
    """A p-value as a reader can use it: below double precision it is `<1e-16`, never `0`."""
    if not np.isfinite(value):
        return "n/a"
    return f"<{SMALLEST_PVALUE:.0e}" if value < SMALLEST_PVALUE else f"{value:.3g}"


def _legend(threshold: float) -> str:
    moderate = min(MODERATE_PSI, threshold)
    items = [
        ("ok", f"PSI below {moderate:g}: no meaningful shift"),
        ("watch", f"PSI {moderate:g} to {threshold:g}: a moderate shift, worth watching"),
        ("drift", f"PSI {threshold:g} or more: the distribution has moved"),
        ("none", "not computed (no values in the window or the reference)"),
    ]
    shown = " ".join(
        f"<span class='verdict' style='background:{_COLOURS[label]}'>{label}</span> "
        f"{html.escape(text)}."
        for label, text in items
    )
    return (
        f"<p class='muted'>{shown} The KS p-value is the chance of a difference this large "
        "between two samples of one distribution.</p>"
    )


def _next_step(result: MonitorResult) -> str:
    drifted = result.drifted_features
    prediction = result.prediction is not None and result.prediction.drifted(result.psi_threshold)
    if not result.measured:
        step = "send traffic (at least a few dozen rows) and run the monitor again."
    elif drifted or prediction:
        what = ", ".join(drifted) or "the predictions"
        pipeline = result.pipeline or "<pipeline>"
        step = (
            f"{what} drifted: retrain on recent data with `mlops-runtime train --pipeline "
            f"{pipeline}`, then `mlops-runtime promote {result.model}` once its gates pass."
        )
    else:
        step = "nothing to do; the champion's traffic looks like its training data."
    return f"<p><b>Next step:</b> {html.escape(step)}</p>"


def _served(result: MonitorResult) -> str:
    rows = []
    for served in result.served:
        age = (
            "n/a"
            if served.registered is None
            else _age((result.end - served.registered).total_seconds()) + " ago"
        )
        rows.append(
            f"<tr><td>{html.escape(served.variant)}</td><td>{html.escape(served.version)}</td>"
            f"<td class='num'>{served.rows}</td><td class='num'>{age}</td></tr>"
        )
    return (
        "<h2>Versions served</h2><table><tr><th>variant</th><th>version</th><th>rows</th>"
        "<th>registered</th></tr>" + "".join(rows) + "</table>"
    )


def _challenger(result: MonitorResult) -> str:
    challenger = result.challenger
    assert challenger is not None
    head = (
        f"<h2>Challenger (version {html.escape(challenger.version)})</h2>"
        f"<p>{challenger.rows} row(s) the challenger answered, against its own training "
        "reference; not part of the champion's figures above.</p>"
    )
    if not challenger.features:
        return head + "<p class='muted'>Too few rows to measure its drift.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(c.column)}</td><td class='num'>{c.psi:.4f}</td><td>"
        f"<span class='verdict' style='background:{_COLOURS[label]}'>{label}</span></td></tr>"
        for c in challenger.features
        for label in [verdict(c.psi, result.psi_threshold)]
    )
    return head + "<table><tr><th>column</th><th>PSI</th><th>verdict</th></tr>" + rows + "</table>"


def _canary(result: MonitorResult) -> str:
    canary = result.canary
    assert canary is not None
    rows = []
    for health in (canary.champion, canary.challenger):
        rate = "n/a" if health.error_rate is None else f"{health.error_rate:.2%}"
        p99 = "n/a" if health.p99_latency_ms is None else f"{health.p99_latency_ms:.1f} ms"
        rows.append(
            f"<tr><td>{health.variant}</td><td>{html.escape(str(health.version))}</td>"
            f"<td class='num'>{health.requests}</td><td class='num'>{rate}</td>"
            f"<td class='num'>{p99}</td></tr>"
        )
    colour = _COLOURS["drift" if canary.breaches else "ok"]
    return (
        "<h2>Canary</h2><table><tr><th>variant</th><th>version</th><th>requests</th>"
        "<th>error rate</th><th>p99 latency</th></tr>" + "".join(rows) + "</table>"
        f"<p><span class='verdict' style='background:{colour}'>"
        f"{html.escape(canary.summary)}</span></p>"
    )


def _timeline(result: MonitorResult) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{event.at:%Y-%m-%d %H:%M:%S}</td><td>{e(str(event.kind))}</td>"
        f"<td>{e(event.version or '')}</td><td>{e(event.summary)}</td><td>{e(event.by)}</td></tr>"
        for event in result.timeline
    )
    return (
        "<h2>Continuous training</h2><p class='muted'>Automated decisions on this model, oldest "
        f"first (all of them: <code>mlops-runtime history {e(result.model)}</code>).</p>"
        "<table><tr><th>UTC</th><th>decision</th><th>version</th><th>what and why</th>"
        "<th>by</th></tr>" + rows + "</table>"
    )


def _figure(
    title: str, reference: pd.Series, current: pd.Series, column: ColumnDrift, result: MonitorResult
) -> str:
    label = verdict(column.psi, result.psi_threshold)
    image = _histogram(reference, current, column.kind, _COLOURS[label])
    caption = f"{title}: PSI {column.psi:.3f} ({label})"
    return (
        f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{image}'>"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _histogram(reference: pd.Series, current: pd.Series, kind: str, colour: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.2, 2.4), dpi=80)
    try:
        numeric_ref = pd.to_numeric(reference, errors="coerce")
        numeric_cur = pd.to_numeric(current, errors="coerce")
        if kind == "numeric" and numeric_ref.notna().any() and numeric_cur.notna().any():
            ref = numeric_ref[np.isfinite(numeric_ref)].to_numpy(dtype=float)
            cur = numeric_cur[np.isfinite(numeric_cur)].to_numpy(dtype=float)
            both = np.concatenate([ref, cur])
            low, high = np.percentile(both, [0.5, 99.5])
            edges = np.linspace(low, high if high > low else low + 1, HISTOGRAM_BINS + 1)
            axes.hist(ref, edges, density=True, alpha=0.55, color="#8c959f", label="reference")
            axes.hist(cur, edges, density=True, alpha=0.55, color=colour, label="current")
        else:
            ref_share = reference.astype(str).value_counts(normalize=True)
            cur_share = current.astype(str).value_counts(normalize=True)
            keys = list(ref_share.add(cur_share, fill_value=0).nlargest(MAX_CATEGORIES).index)
            x = np.arange(len(keys))
            axes.bar(x - 0.2, [ref_share.get(k, 0) for k in keys], 0.4, color="#8c959f")
            axes.bar(x + 0.2, [cur_share.get(k, 0) for k in keys], 0.4, color=colour)
            axes.set_xticks(x, keys, rotation=45, fontsize=7)
            axes.legend(["reference", "current"], fontsize=7)
        if kind == "numeric":
            axes.legend(fontsize=7)
        axes.tick_params(labelsize=7)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
