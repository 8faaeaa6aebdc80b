"""How fast `mlops plan` and `mlops diff` are, and how plan time grows with a stack's size.

The tool a user would otherwise run is `pulumi preview`, which needs a cloud account; offline,
the honest baseline is the same program under the Pulumi SDK's own mocks with nothing recorded
(what a hand-written `pulumi.runtime.set_mocks` unit test costs). The ratio is our overhead.

    .venv/bin/python benchmarks/plan.py            # writes the table to stdout (markdown)
"""

from __future__ import annotations

import contextvars
import copy
import runpy
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pulumi
import yaml
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tooling.diff import diff_stacks  # noqa: E402
from tooling.mocks import PlatformMocks  # noqa: E402
from tooling.plan import engine_config, plan_stack  # noqa: E402
from tooling.project import Workspace  # noqa: E402

WORKSPACE = Workspace(ROOT)
STACKS = ROOT / "stacks"
PROGRAM = ROOT / "__main__.py"

REPEAT = 3


def best(fn: Callable[[], object], repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bare_sdk_mocks(file: Path, stack: str, region: str) -> None:
    """The same program under the SDK's plain MockMonitor: no recording, no masking, no sorting."""

    def run() -> None:
        mocks = PlatformMocks(region)
        pulumi.runtime.set_mocks(mocks, project="mlops", stack=stack, preview=True)
        pulumi.runtime.set_all_config(*engine_config(file))
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(PROGRAM), run_name="__main__")))

    contextvars.Context().run(run)


def synthetic_stack(folder: Path, endpoints: int) -> Path:
    """fraud-dev with ``endpoints`` real-time endpoints serving one external model."""
    document = yaml.safe_load((STACKS / "Pulumi.fraud-dev.yaml").read_text())
    config = document["config"]
    template = config["mlops:serving"]["endpoints"][0]
    config["mlops:serving"] = {
        "externalModels": ["shared-model"],
        "endpoints": [
            dict(copy.deepcopy(template), name=f"ep-{i:04d}", model="shared-model")
            for i in range(endpoints)
        ],
    }
    file = folder / "Pulumi.fraud-dev.yaml"
    file.write_text(yaml.safe_dump(document, sort_keys=False))
    return file


def main() -> None:
    rows = [
        "| stack | resources | mlops plan (s) | bare SDK mocks (s) | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    plan_stack("fraud-dev", workspace=WORKSPACE)  # warm the imports
    for file in sorted(STACKS.glob("Pulumi.*.yaml")):
        stack = file.stem.removeprefix("Pulumi.")
        region = yaml.safe_load(file.read_text())["config"]["aws:region"]
        count = len(plan_stack(file, workspace=WORKSPACE).resources)
        ours = best(lambda file=file: plan_stack(file, workspace=WORKSPACE))
        bare = best(
            lambda file=file, stack=stack, region=region: bare_sdk_mocks(file, stack, region)
        )
        rows.append(f"| {stack} | {count} | {ours:.2f} | {bare:.2f} | {ours / bare:.2f} |")
    rows += [
        "",
        "| endpoints | resources | mlops plan (s) | s per 1,000 resources |",
        "|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as folder:
        for endpoints in (10, 100, 500):
            file = synthetic_stack(Path(folder), endpoints)
            count = len(plan_stack(file, workspace=WORKSPACE).resources)
            seconds = best(
                lambda file=file: plan_stack(file, workspace=WORKSPACE),
                repeat=1 if endpoints >= 500 else REPEAT,
            )
            rows.append(f"| {endpoints} | {count} | {seconds:.2f} | {seconds / count * 1000:.2f} |")
    stacks = [f.stem.removeprefix("Pulumi.") for f in sorted(STACKS.glob("Pulumi.*.yaml"))]
    diff_seconds = best(lambda: diff_stacks("HEAD", stacks, repo=ROOT), repeat=1)
    rows += [
        "",
        f"`mlops diff --base HEAD` over all {len(stacks)} stacks (both sides planned, each in its own "
        f"process with its own code): {diff_seconds:.1f} s",
    ]
    print("\n".join(rows))


if __name__ == "__main__":
    main()
