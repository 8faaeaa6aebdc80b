"""`mlops-runtime`: the commands the team's jobs run (materialize, train, promote, rollback)."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from runtime.errors import RuntimeUserError
from runtime.settings import Settings, env_var, library_env

app = typer.Typer(
    name="mlops-runtime",
    help="Runs inside a team's MLOps environment. Configured by MLOPS_* environment variables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")
_env_files: list[Path] = []
"""The --env-file given to this invocation (at most one)."""


@app.callback()
def options(
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file",
            help="Read MLOPS_* settings from this dotenv file; variables set in the process win "
            "(`mlops demo` writes one: .mlops/demo/runtime.env).",
        ),
    ] = None,
) -> None:
    """Runs inside a team's MLOps environment. Configured by MLOPS_* environment variables."""
    _env_files.clear()
    if env_file is not None:
        if not env_file.is_file():
            err.print(f"[bold red]error:[/] --env-file {env_file}: no such file", highlight=False)
            raise typer.Exit(1)
        _env_files.append(env_file)


def _settings() -> Settings:
    try:
        settings = Settings(_env_file=_env_files[0] if _env_files else None)  # type: ignore[call-arg]
    except ValidationError as error:
        problems = "; ".join(
            f"{env_var(str(e['loc'][0])) if e['loc'] and str(e['loc'][0]) in Settings.model_fields else e['loc']}"
            f"{'.' + '.'.join(map(str, e['loc'][1:])) if len(e['loc']) > 1 else ''}: {e['msg']}"
            for e in error.errors()
        )
        raise RuntimeUserError(f"invalid runtime settings: {problems}") from None
    # MLflow, Feast and boto3 read their own variables; derive them from the one contract.
    os.environ.update(library_env(settings))
    return settings


def _run(action: Callable[[], T]) -> T:
    logging.basicConfig(level=logging.WARNING)
    # MLflow installs its own INFO handler; a job's log should carry our lines, not its chatter.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    try:
        return action()
    except RuntimeUserError as error:
        err.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(error.exit_code) from None


@app.command()
def materialize(
    shard: Annotated[
        int,
        typer.Option(
            envvar="JOB_COMPLETION_INDEX",
            min=0,
            help="The share of the online views to materialize, of MLOPS_MATERIALIZE_SHARDS (in "
            "an Indexed Job: the pod's completion index).",
        ),
    ] = 0,
) -> None:
    """Apply the feature definitions and materialize new values into the online store."""

    def action() -> None:
        from runtime.features import materialize as run

        for fresh in run(_settings(), console=err, shard=shard):
            age = "no values yet" if fresh.age_seconds is None else f"{fresh.age_seconds:.0f}s old"
            out.print(f"{fresh.feature_view}: newest value {fresh.newest_value} ({age})")

    _run(action)


@app.command()
def train(
    pipeline: Annotated[str, typer.Option("--pipeline", "-p", help="Pipeline name to run.")],
    if_due: Annotated[
        bool,
        typer.Option(
            "--if-due",
            help="Continuous training: retrain only if a trigger fired and no guardrail objects "
            "(hold, lease, canary, cooldown, budget, quarantine); say why not otherwise.",
        ),
    ] = False,
) -> None:
    """Check data, build a point-in-time training set, fit, evaluate, gate and register."""

    def action() -> None:
        if if_due:
            from runtime.continuous import run_if_due

            check = run_if_due(
                _settings(),
                pipeline,
                say=lambda line: err.print(f"  {line}", highlight=False, markup=False),
            )
            out.print(f"{pipeline}: {check.summary}", highlight=False, markup=False)
            if check.quarantined:
                out.print(
                    f"{check.assessment.model}: quarantined (held) after "
                    f"{check.assessment.failures_in_a_row} failed retrain(s) in a row; "
                    f"`mlops-runtime release {check.assessment.model}` resumes",
                    highlight=False,
                )
            return
        from runtime.train import train as run

        result = run(_settings(), pipeline)
        shown = ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items())
        out.print(
            f"registered {result.model} version {result.version} as challenger "
            f"(run {result.run_id}): {shown}"
        )

    _run(action)


@app.command()
def promote(model: Annotated[str, typer.Argument(help="Registered model name.")]) -> None:
    """Make the challenger version the champion (the replaced champion is remembered)."""

    def action() -> None:
        from runtime.registry import promote as run

        result = run(_settings(), model)
        if result.changed:
            out.print(f"{model}: champion is now version {result.champion} (was {result.previous})")
        else:
            out.print(f"{model}: champion is already version {result.champion}; nothing to do")

    _run(action)


@app.command()
def rollback(model: Annotated[str, typer.Argument(help="Registered model name.")]) -> None:
    """Point the champion back at the version it replaced."""

    def action() -> None:
        from runtime.registry import rollback as run

        result = run(_settings(), model)
        out.print(
            f"{model}: champion rolled back to version {result.champion} (was {result.previous})"
        )

    _run(action)


@app.command("demo-data")
def demo_data(
    team: Annotated[str, typer.Option(help="fraud, recommendations or forecasting.")] = "fraud",
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 7,
    rows: Annotated[int, typer.Option(help="Labelled rows to generate.")] = 3000,
) -> None:
    """Write a demo team's synthetic feature sources and labels into the offline store."""

    def action() -> None:
        from runtime.demo_data import write_demo_data

        for path, uri in write_demo_data(_settings(), team, seed=seed, rows=rows).items():
            out.print(f"{path} -> {uri}")

    _run(action)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "0.0.0.0",
    poll_seconds: Annotated[
        float, typer.Option(help="How often registry aliases are checked for a new version.")
    ] = 10.0,
    fast_path: Annotated[
        bool, typer.Option(help="Serve through ONNX where the model converts and agrees.")
    ] = True,
    max_batch_rows: Annotated[
        int, typer.Option(min=1, help="Most rows scored in one model call (1: no batching).")
    ] = 256,
) -> None:
    """Serve the endpoint's champion (and challenger) over HTTP on MLOPS_PORT until SIGTERM."""

    def action() -> None:
        # One request, one core: replicas scale out, and BLAS/OpenMP pools only add contention.
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, "1")
        settings = _settings()
        logging.getLogger("runtime").setLevel(logging.INFO)
        from runtime.serving import serve as run

        run(
            settings,
            host=host,
            poll_seconds=poll_seconds,
            fast_path=fast_path,
            max_batch_rows=max_batch_rows,
        )

    _run(action)


@app.command("batch-predict")
def batch_predict(
    unknown_entities: Annotated[
        str,
        typer.Option(
            help="Rows whose entity key is null or unknown (no feature values): `fail` the run "
            "(nothing written) or `skip` them (counted in the output)."
        ),
    ] = "fail",
    shard: Annotated[
        int,
        typer.Option(
            envvar="JOB_COMPLETION_INDEX",
            min=0,
            help="The share of the list to score, of MLOPS_BATCH_SHARDS (in an Indexed Job: "
            "the pod's completion index).",
        ),
    ] = 0,
) -> None:
    """Score the entity list MLOPS_BATCH_INPUT and write predictions under MLOPS_BATCH_OUTPUT_URI."""

    def action() -> None:
        from runtime.batch import batch_predict as run

        # A long run shows its progress: one line per row group scored.
        logging.getLogger("runtime.batch").setLevel(logging.INFO)
        result = run(_settings(), unknown_entities=unknown_entities, shard=shard)
        skipped = (
            f" ({result.skipped} row(s) with a null or unknown entity key left out)"
            if result.skipped
            else ""
        )
        share = f" (shard {result.shard} of {result.shards})" if result.shards > 1 else ""
        waiting = "" if result.complete else "; the run completes when every shard has"
        out.print(
            f"scored {result.rows} rows with {result.model} version {result.version}{share} "
            f"-> {result.output}{skipped}{waiting}"
        )

    _run(action)


@app.command()
def monitor(
    endpoint: Annotated[str, typer.Option("--endpoint", "-e", help="Endpoint to monitor.")],
    window: Annotated[
        str, typer.Option(help="How far back the prediction log is read (90s, 15m, 1h, 1d).")
    ] = "1h",
    labels: Annotated[
        str | None,
        typer.Option(help="Parquet of arrived labels (request_id + target) for live quality."),
    ] = None,
    psi_threshold: Annotated[
        float, typer.Option(help="PSI at or above which a column counts as drifted.", min=0)
    ] = 0.2,
) -> None:
    """Measure drift of the endpoint's traffic, guard its canary, publish metrics and a report."""

    def action() -> None:
        from runtime.errors import ConfigurationError
        from runtime.monitor import monitor as run
        from runtime.spec import parse_duration

        try:
            span = parse_duration(window)
        except ValueError as error:
            raise ConfigurationError(f"--window {window!r}: {error}") from None
        result = run(_settings(), endpoint, window=span, labels=labels, psi_threshold=psi_threshold)
        if not result.measured:
            out.print(
                f"{endpoint}: {result.rows} logged row(s) in the last {window}; too few to "
                "measure drift"
            )
        else:
            drifted = ", ".join(result.drifted_features) or "none"
            prediction = (
                "" if result.prediction is None else f", prediction PSI {result.prediction.psi:.3f}"
            )
            out.print(
                f"{endpoint}: {result.rows} row(s), max feature PSI {result.max_feature_psi:.3f}"
                f"{prediction}; drifted (PSI >= {psi_threshold:g}): {drifted}"
            )
        if result.quality:
            shown = ", ".join(f"{k}={v:.4f}" for k, v in result.quality.items())
            out.print(f"quality on {result.labelled_rows} labelled row(s): {shown}")
        if result.canary is not None:
            out.print(f"canary: {result.canary.summary}")
        if result.report is not None:
            out.print(f"drift report: {result.report}")

    _run(action)


# Continuous training: a person's commands (the issue's `hold MODEL`, `release`, `history`).


@app.command("hold")
def hold_command(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (shown to everyone).")],
    by: Annotated[str | None, typer.Option(help="Who holds it (default: the user).")] = None,
) -> None:
    """Stop every automated action on MODEL: retrains, promotions, rollbacks."""

    def action() -> None:
        from runtime.continuous import hold

        held = hold(_settings(), model, reason, by=by)
        out.print(
            f"{model}: held by {held.by} since {held.since:%Y-%m-%d %H:%M:%S}Z: {held.reason}",
            highlight=False,
        )

    _run(action)


@app.command("release")
def release_command(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    by: Annotated[str | None, typer.Option(help="Who releases it (default: the user).")] = None,
) -> None:
    """Resume automated actions on MODEL (also ends a quarantine after failed retrains)."""

    def action() -> None:
        from runtime.continuous import release

        released = release(_settings(), model, by=by)
        if released is None:
            out.print(f"{model}: not held; nothing to release")
        else:
            out.print(f"{model}: released (was held by {released.by}: {released.reason})")

    _run(action)


@app.command("status")
def status_command(model: Annotated[str, typer.Argument(help="Registered model name.")]) -> None:
    """Whether a retrain of MODEL is due now: each trigger, each guardrail, the budget."""

    def action() -> None:
        from runtime.continuous import status_lines

        for line in status_lines(_settings(), model):
            out.print(line, highlight=False, markup=False)

    _run(action)


@app.command("history")
def history_command(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    since: Annotated[
        str | None, typer.Option(help="Only events this recent (e.g. 7d, 12h).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The timeline of MODEL's automated decisions: triggered, skipped, trained, promoted, ..."""

    def action() -> None:
        import json
        from datetime import UTC, datetime

        from runtime import events
        from runtime.errors import ConfigurationError
        from runtime.spec import parse_duration

        start = None
        if since is not None:
            try:
                start = datetime.now(UTC) - parse_duration(since)
            except ValueError as error:
                raise ConfigurationError(f"--since {since!r}: {error}") from None
        found = events.read(_settings(), model, since=start)
        if as_json:
            for event in found:
                out.print(json.dumps(event.to_json(), default=str), highlight=False, soft_wrap=True)
            return
        if not found:
            out.print(f"{model}: no continuous-training events yet")
            return
        for event in found:
            version = f" v{event.version}" if event.version else ""
            out.print(
                f"{event.at:%Y-%m-%d %H:%M:%S}Z  {event.kind:<11}{version}  {event.summary}"
                + ("" if event.by == "mlops" else f"  [{event.by}]"),
                highlight=False,
                markup=False,
            )

    _run(action)


@app.command("database-bootstrap")
def database_bootstrap() -> None:
    """Make the registry database's login roles, each owning its database (idempotent).

    Run by the stack's bootstrap Job, the one pod that may read the RDS master secret
    (MLOPS_DATABASE_MASTER_SECRET_ARN); MLOPS_DATABASE_ROLES says which roles. Prints what it
    changed, or that nothing needed to; never a password.
    """

    def action() -> None:
        from runtime.database_roles import bootstrap

        settings = _settings()
        changes = bootstrap(settings)
        for change in changes:
            out.print(f"changed {change}", highlight=False, markup=False)
        roles = ", ".join(f"{r.role} (database {r.database})" for r in settings.database_roles)
        verdict = f"{len(changes)} change(s)" if changes else "nothing to change"
        out.print(f"database roles ready: {roles}; {verdict}", highlight=False, markup=False)

    _run(action)


def main() -> None:
    """Console-script entry point."""
    app()
