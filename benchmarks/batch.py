"""Batch prediction over millions of entities: `mlops-runtime batch-predict` next to the naive way.

The fraud demo team on the embedded default, built as `mlops demo` builds it (demo data with
daily feature snapshots, Feast registry, train with gates, register, promote the champion),
under a fresh home. An entity list of ``--rows`` rows is then written as parquet in row groups of
``batch.CHUNK_ROWS`` (written a row group at a time, so this process never holds it): card ids
drawn from the demo's cards, ``event_timestamp`` spread over the last three days of snapshots,
so every row has feature values as of its time (the feature view's TTL is three days).

Two ways of scoring it, each in a child process of its own, one after the other:

- streamed: ``mlops-runtime batch-predict`` (the CLI, exactly as a Job runs it), which reads the
  list a row group at a time, joins the missing features point-in-time from Feast's offline store
  chunk by chunk, scores with the champion and writes one part per chunk;
- naive: what a team would otherwise write: ``pd.read_parquet`` of the whole list into one frame,
  one ``get_historical_features`` over the whole frame, ``mlflow.sklearn.load_model`` of the
  champion, ``predict`` and ``predict_proba`` on the whole frame, one parquet written. Feast's
  join returns a row repeating an (entity, time) of the list once, so the naive output can be
  short of the list (by 0.6% at 1M rows over 300 cards); the batch module joins each unique
  (entity, time) once and merges the values back onto every row, and the harness checks its
  parts hold every row. The table says how many rows the naive way lost.

Reported for each: wall time of the child process (interpreter start, imports and model load
included), rows/s over that wall time, peak RSS of that child (``ru_maxrss`` from ``wait4`` on
it: the kernel's high-water mark of the scoring process alone, interpreter and libraries
included), what it wrote, and the progress lines it printed on stderr (with the seconds since
its start at which they came). The naive child is stopped once its RSS passes
``--naive-limit-gib`` (default: 3/4 of the memory available at the start; a 100 ms watch of
``/proc``): the table then says at what RSS and after how long, i.e. that it does not fit.

Feature path: by default both ways join the model's four features from Feast (the real path).
With ``--inline-features`` the list carries them inline instead (the values each row's card had
in the snapshot as of its time, i.e. what the join would give), the batch module scores them as
given and the naive way skips the join: that measures reading, scoring and writing alone. The
table names the path its figures used. ``--naive-rows`` runs the naive way at other sizes
(comma-separated, each a list of its own drawn the same way; 0 leaves it out), to show its
memory growing where the full list does not fit; at ``--rows`` both ways read the same list.

    # the target: 10M streamed; naive at 1M, 2M, 3M and 10M (stopped if it does not fit)
    .venv/bin/python benchmarks/batch.py --rows 10000000 --naive-rows 1000000,2000000,3000000,10000000
    .venv/bin/python benchmarks/batch.py --rows 1000000              # a quick check of the harness
    .venv/bin/python benchmarks/batch.py --rows 10000000 --inline-features
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runtime.batch import CHUNK_ROWS  # noqa: E402
from runtime.features import ENTITY_TIMESTAMP  # noqa: E402
from runtime.settings import ENV_PREFIX, Settings, library_env, render_env  # noqa: E402

TEAM = "fraud"
PIPELINE = "fraud-model"
ENDPOINT = "nightly"
VIEW = "card_txn_stats"
FEATURES = ["txn_count_7d", "avg_amount_7d", "max_amount_7d", "share_foreign_7d"]
DEMO_ROWS = 3000
"""Labelled rows of the demo data (as `mlops demo`): 300 cards, 35 daily snapshots."""
RECENT_DAYS = 3
"""Entity times fall in the last snapshots' days: within the view's TTL (3d)."""
SEED = 20
STREAMED = "streamed"


def log(message: str) -> None:
    print(f"[batch bench {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def team_settings(home: Path, entities: str) -> Settings:
    from runtime.demo_data import demo_settings
    from runtime.spec import EndpointSpec

    return demo_settings(
        TEAM,
        home=home.resolve(),
        endpoint=EndpointSpec(name=ENDPOINT, model=PIPELINE),
        batch_input=entities,
        batch_run=STREAMED,
    )


def child_env(settings: Settings) -> dict[str, str]:
    """This process's env with exactly ``settings`` as MLOPS_* (what a Job's pod gets)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    fields = settings.model_dump(exclude_defaults=True)
    env |= {k: str(v) for k, v in render_env(**{n: getattr(settings, n) for n in fields}).items()}
    return env | library_env(settings)


def build_team(settings: Settings) -> tuple[str, pd.DataFrame]:
    """Demo data, Feast registry, a trained and promoted champion; (version, snapshots)."""
    os.environ.update(library_env(settings))
    from runtime import registry
    from runtime.demo_data import write_demo_data
    from runtime.train import train

    written = write_demo_data(settings, TEAM, rows=DEMO_ROWS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        registry.client(settings).search_experiments(max_results=1)
        trained = train(settings, PIPELINE)
        promoted = registry.promote(settings, trained.model)
    snapshots = pd.read_parquet(written[f"{VIEW}/part-0.parquet"])
    return str(promoted.champion), snapshots


def write_entities(
    path: Path, rows: int, snapshots: pd.DataFrame, *, inline: bool
) -> dict[str, Any]:
    """``rows`` entities in row groups of ``CHUNK_ROWS``, one group generated at a time."""
    days = np.sort(snapshots["event_ts"].unique())[-RECENT_DAYS:]
    cards = np.sort(snapshots["card_id"].unique())
    recent = snapshots[snapshots["event_ts"].isin(days)]
    # values[day, card position]: the snapshot as of any time in that day.
    values = {
        name: recent.pivot(index="event_ts", columns="card_id", values=name)
        .reindex(index=days, columns=cards)
        .to_numpy()
        for name in FEATURES
    }
    rng = np.random.default_rng(SEED)
    day_ns = np.asarray(pd.DatetimeIndex(days).asi8)
    started = time.perf_counter()
    writer: pq.ParquetWriter | None = None
    try:
        for first in range(0, rows, CHUNK_ROWS):
            n = min(CHUNK_ROWS, rows - first)
            card = rng.integers(0, len(cards), n)
            day = rng.integers(0, len(days), n)
            stamps = day_ns[day] + rng.integers(0, 86_400, n) * 1_000_000_000
            columns: dict[str, Any] = {
                "card_id": pa.array(cards[card].astype("int64")),
                ENTITY_TIMESTAMP: pa.array(stamps, pa.timestamp("ns", tz="UTC")),
            }
            if inline:
                for name in FEATURES:
                    column = values[name][day, card]
                    columns[name] = pa.array(
                        column.astype("int64") if name == "txn_count_7d" else column
                    )
            table = pa.table(columns)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table, row_group_size=CHUNK_ROWS)
    finally:
        if writer is not None:
            writer.close()
    return {
        "seconds": time.perf_counter() - started,
        "bytes": path.stat().st_size,
        "row_groups": pq.ParquetFile(path).metadata.num_row_groups,
        "cards": len(cards),
    }


def available_memory() -> int:
    with open("/proc/meminfo") as meminfo:
        fields = dict(line.split(":", 1) for line in meminfo)
    return int(fields["MemAvailable"].split()[0]) * 1024


def rss_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (FileNotFoundError, ProcessLookupError):
        return 0


def run_child(
    command: list[str], env: dict[str, str], label: str, limit: int | None = None
) -> dict[str, Any]:
    """Run ``command``; its wall time, exit code, peak RSS (``wait4``) and stderr lines, each
    with the seconds since the start. Over ``limit`` bytes of RSS it is stopped (SIGKILL)
    before the kernel's OOM killer picks something else on the machine."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    lines: list[tuple[float, str]] = []
    stdout: list[str] = []
    stopped: list[int] = []
    done = threading.Event()

    def drain_stdout() -> None:
        assert process.stdout is not None
        stdout.extend(process.stdout)

    def watch() -> None:
        while limit and not done.wait(0.1):
            if (rss := rss_of(process.pid)) > limit:
                stopped.append(rss)
                process.kill()
                return

    reader = threading.Thread(target=drain_stdout, daemon=True)
    watcher = threading.Thread(target=watch, daemon=True)
    reader.start()
    watcher.start()
    assert process.stderr is not None
    for line in process.stderr:
        at = time.perf_counter() - started
        lines.append((at, line.rstrip("\n")))
        print(f"  {label} {at:6.1f}s | {line.rstrip()}", file=sys.stderr, flush=True)
    # wait4 on the one child: its own high-water mark, not the max over all children so far.
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    process.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    watcher.join()
    return {
        "seconds": seconds,
        "stopped": stopped[0] if stopped else None,
        "exit": process.returncode,
        "peak_rss": usage.ru_maxrss * 1024,
        "stderr": lines,
        "stdout": "".join(stdout),
    }


def naive(settings: Settings, entities: Path, output: Path, inline: bool) -> None:
    """What a team writes without the platform: everything in one frame."""
    import mlflow

    from runtime.features import open_store
    from runtime.registry import tracking_uri

    warnings.filterwarnings("ignore")
    os.environ.update(library_env(settings))
    frame = pd.read_parquet(entities)
    if not inline:
        store = open_store(settings)
        refs = [f"{VIEW}:{name}" for name in FEATURES]
        frame = store.get_historical_features(entity_df=frame, features=refs).to_df()
    # The team's own model: they would allow MLflow to load it (the runtime loads skops itself).
    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
    mlflow.set_tracking_uri(tracking_uri(settings))
    mlflow.set_registry_uri(tracking_uri(settings))
    model = mlflow.sklearn.load_model(f"models:/{PIPELINE}@champion")
    inputs = frame[FEATURES]
    frame["prediction"] = model.predict(inputs)
    frame["score"] = model.predict_proba(inputs)[:, 1]
    frame.to_parquet(output, index=False)
    print(json.dumps({"rows": len(frame)}))


def parts_of(folder: Path) -> tuple[int, int, bool]:
    """(parts, rows in them from their footers, _SUCCESS there)."""
    parts = sorted(folder.glob("part-*.parquet"))
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
    return len(parts), rows, (folder / "_SUCCESS").exists()


def progress_of(lines: list[tuple[float, str]]) -> str:
    shown = [(at, line) for at, line in lines if "rows scored" in line]
    if not shown:
        return "none"
    (first, _), (last, line) = shown[0], shown[-1]
    return (
        f"{len(shown):,} line{'s' if len(shown) > 1 else ''}, one per row group: "
        f"the first at {first:.1f} s, "
        f"the last at {last:.1f} s (`{line.split(':', 2)[-1].strip()}`)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="entities in the list")
    parser.add_argument(
        "--naive-rows",
        default=None,
        help="sizes for the naive way, comma-separated (default: --rows; 0: leave it out)",
    )
    parser.add_argument(
        "--inline-features",
        action="store_true",
        help="the list carries the features inline (no Feast join on either side)",
    )
    parser.add_argument(
        "--naive-limit-gib",
        type=float,
        default=None,
        help="stop the naive way above this RSS (3/4 of the memory available at the start)",
    )
    parser.add_argument("--home", type=Path, help="where to build the team (a fresh temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the home afterwards")
    parser.add_argument("--naive", nargs=2, metavar=("LIST", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive:
        naive(Settings(), Path(args.naive[0]), Path(args.naive[1]), args.inline_features)
        return

    naive_sizes = [
        int(size) for size in (args.naive_rows or str(args.rows)).split(",") if int(size) > 0
    ]
    home = args.home or Path(tempfile.mkdtemp(prefix="mlops-batch-bench-"))
    home.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    limit = int(
        args.naive_limit_gib * 2**30 if args.naive_limit_gib else available_memory() * 3 // 4
    )
    try:
        settings = team_settings(home, "entities/list.parquet")
        started = time.perf_counter()
        version, snapshots = build_team(settings)
        log(f"team built in {time.perf_counter() - started:.0f}s: {PIPELINE} v{version} champion")
        lists = home / "offline" / "entities"
        lists.mkdir(parents=True, exist_ok=True)
        full = lists / "list.parquet"
        written = write_entities(full, args.rows, snapshots, inline=args.inline_features)
        log(
            f"entity list: {args.rows:,} rows over {written['cards']} cards, "
            f"{written['row_groups']} row groups, {written['bytes'] / 2**20:,.0f} MiB "
            f"in {written['seconds']:.0f}s"
        )
        runtime = Path(sys.executable).parent / "mlops-runtime"
        log("streamed: mlops-runtime batch-predict")
        streamed = run_child([str(runtime), "batch-predict"], child_env(settings), "streamed")
        if streamed["exit"] != 0:
            raise SystemExit(f"batch-predict failed (exit {streamed['exit']})")
        run_folder = home / "batch-predictions" / ENDPOINT / f"run={STREAMED}"
        parts, part_rows, success = parts_of(run_folder)
        if part_rows != args.rows or not success:
            raise SystemExit(f"batch-predict wrote {part_rows:,} rows (success: {success})")
        results = [
            (
                "streamed: `mlops-runtime batch-predict`",
                args.rows,
                streamed,
                f"{parts:,} part{'s' if parts > 1 else ''} + `_SUCCESS`",
                progress_of(streamed["stderr"]),
            )
        ]
        shutil.rmtree(run_folder)
        for naive_rows in naive_sizes:
            # The same list when the size is the same; else a list of that size, same draws.
            source = full
            if naive_rows != args.rows:
                source = home / "naive-list.parquet"
                write_entities(source, naive_rows, snapshots, inline=args.inline_features)
            output = home / "naive.parquet"
            log(f"naive: one frame of {naive_rows:,} rows")
            command = [sys.executable, __file__, "--naive", str(source), str(output)]
            if args.inline_features:
                command.append("--inline-features")
            plain = run_child(command, child_env(settings), "naive", limit)
            if plain["exit"] == 0:
                done = json.loads(plain["stdout"].strip().splitlines()[-1])["rows"]
                outcome = "1 file" + (
                    ""
                    if done == naive_rows
                    else f" of {done:,} rows: {naive_rows - done:,} lost (Feast drops rows "
                    "repeating an entity and time)"
                )
            else:
                outcome = (
                    f"stopped at {plain['stopped'] / 2**30:.1f} GiB RSS after "
                    f"{plain['seconds']:.0f} s: does not fit"
                    if plain["stopped"]
                    else f"failed, exit {plain['exit']}"
                )
            results.append(("naive: pandas, one frame", naive_rows, plain, outcome, "none"))
            output.unlink(missing_ok=True)
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)

    path = (
        "features inline in the list (no join)"
        if args.inline_features
        else "features joined point-in-time from Feast's offline store (dask), "
        f"{written['cards']} cards"
    )
    gib = 2**30
    print(
        f"{args.rows:,} entities, {path}; load average {load:.1f} at the start. Peak RSS: "
        "`ru_maxrss` of the scoring child process (`wait4`), interpreter and libraries included.\n"
    )
    print(
        "| way | rows | wall time (s) | rows/s | peak RSS (GiB) | written | progress shown |\n"
        "|---|---:|---:|---:|---:|---|---|"
    )
    for name, rows, r, outcome, progress in results:
        rate = f"{rows / r['seconds']:,.0f}" if r["exit"] == 0 else "-"
        print(
            f"| {name} | {rows:,} | {r['seconds']:.1f} | {rate} "
            f"| {r['peak_rss'] / gib:.2f} | {outcome} | {progress} |"
        )
    (_, s_rows, s, *_), *others = results
    for _, n_rows, n, *_ in others:
        if n["exit"] != 0:
            continue
        size = "the same list" if n_rows == s_rows else f"naive at {n_rows:,} rows"
        # Rows per second, not seconds: the two may have scored lists of different sizes.
        speed = (s_rows / s["seconds"]) / (n_rows / n["seconds"])
        print(
            f"\nnaive / streamed ({size}): peak RSS {n['peak_rss'] / s['peak_rss']:.1f}x; "
            f"streamed rows/s {speed:.2f}x the naive way's",
            end="",
        )
    print()


if __name__ == "__main__":
    main()
