"""How fast `mlops diff` and `mlops plan` are at platform scale, next to the code before.

A generated repository: ``--teams`` teams x dev/prod of realistic variety (the baseline's
example stacks as templates, each team renamed, with one to three endpoints, extra feature views
and a second pipeline here and there) and the platform stacks, committed. The same team stacks go
into two copies: one with this tree's code, one with the code of ``--baseline`` (a git revision;
what the ratio compares with). The templates are the baseline's own, so both codes read them
(the baseline refuses keys added since); the only difference is what this code requires and the
baseline refuses (see for_this_code). Each copy keeps its own platform project and stacks. Every
stack of both copies is validated by its own code before anything is timed. Every figure is wall
time of a fresh process from the CLI (imports included), one run each:

- a change under `components/` (a comment line): `mlops diff --base HEAD` over every stack, both
  sides planned, cold (empty plan cache); then with the base side planned before (the cache a
  CI run restores), the head side changed again;
- a config change to one stack (an endpoint's max replicas), cold and with the base cached;
- plan time of one synthetic stack (fraud-dev with N real-time endpoints) at about 1k, 5k and
  10k resources, beside the same program under the Pulumi SDK's bare mocks (nothing recorded).

    .venv/bin/python benchmarks/plan.py --baseline <commit> --teams 50 --sizes 1000,5000,10000
    .venv/bin/python benchmarks/plan.py --baseline <commit> --teams 5 --sizes 1000   # small
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CODE = (
    "__main__.py",
    "Pulumi.yaml",
    "pyproject.toml",
    "components",
    "policy",
    "runtime",
    "tooling",
)
PLATFORM = "platform"
TEMPLATES = ("fraud", "forecasting", "recommendations")
CACHE = Path(".mlops") / "plan-cache"

CLI = "import sys; sys.argv[0] = 'mlops'; from tooling.cli import main; main()"
"""`mlops` with the code of the working folder (a `-c` script puts it first on sys.path)."""

PLAN_ONE = """
import json, sys, time
from pathlib import Path
from tooling import plan as planning
from tooling.plan import plan_stack
refused = []
if hasattr(planning, "preflight"):  # a code with the preflight: it runs, its refusals are noted
    check = planning.preflight.check
    def noted(resources):
        refused.extend(f"{f.where}: should be {f.message}" for f in check(resources))
        return []
    planning.preflight.check = noted
plan_stack("fraud-dev")  # imports and first-use costs out of the figure
refused.clear()
start = time.perf_counter()
plan = plan_stack(Path(sys.argv[1]))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "resources": len(plan.resources), "refused": refused}))
"""
"""One plan's time (imports out of it). What this code's preflight would refuse (a big stack
passes IAM's quota of inline policy characters on the drift monitor's role: every endpoint's
prediction log is named in it) is noted, not raised, so the plan is timed whole all the same."""

BARE_SDK = """
import contextvars, json, runpy, sys, time
from pathlib import Path
import pulumi, yaml
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await
from tooling.mocks import PlatformMocks
from tooling.plan import engine_config, plan_stack

def bare(file):
    region = yaml.safe_load(file.read_text())["config"]["aws:region"]
    def run():
        pulumi.runtime.set_mocks(PlatformMocks(region), project="mlops", stack="fraud-dev", preview=True)
        pulumi.runtime.set_all_config(*engine_config(file))
        _sync_await(run_pulumi_func(lambda: runpy.run_path("__main__.py", run_name="__main__")))
    contextvars.Context().run(run)

plan_stack("fraud-dev")
bare(Path("stacks/Pulumi.fraud-dev.yaml"))
start = time.perf_counter()
bare(Path(sys.argv[1]))
print(json.dumps({"seconds": time.perf_counter() - start}))
"""
"""The same program under the SDK's plain MockMonitor: no recording, no masking, no sorting."""


# -- the generated repository -------------------------------------------------------------------


def team_stacks(teams: int, templates: Path) -> dict[str, dict[str, Any]]:
    """`Pulumi.<team>-<env>.yaml` -> its document, for ``teams`` teams of varied shapes, from
    the example stacks in ``templates`` (a tree's root)."""
    stacks: dict[str, dict[str, Any]] = {}
    for index in range(teams):
        template = TEMPLATES[index % len(TEMPLATES)]
        team = f"{template[:5]}{index:02d}"
        for env in ("dev", "prod"):
            text = (templates / "stacks" / f"Pulumi.{template}-{env}.yaml").read_text()
            document = yaml.safe_load(text.replace(template, team))
            _vary(document["config"], index, env)
            stacks[f"Pulumi.{team}-{env}.yaml"] = document
    return stacks


REQUIRED_IN_PROD = ("mlops:keyAdministrators", "mlops:network")


def for_this_code(stacks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The same stacks with what this tree's code requires and an older one refuses, taken from
    this tree's example stack of the same template and environment: in prod, the administrators
    of the team's KMS keys (`mlops:keyAdministrators`) and the load balancers' subnets that an
    ingress is opened to (`mlops:network`); an ingress's TLS certificate (`certificateArn`).
    Nothing else differs, so both sides plan the same teams."""
    adapted: dict[str, dict[str, Any]] = {}
    for name, document in stacks.items():
        team, env = name.removeprefix("Pulumi.").removesuffix(".yaml").rsplit("-", 1)
        template = next(t for t in TEMPLATES if team.startswith(t[:5]))
        ours = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{template}-{env}.yaml").read_text())
        config, own = copy.deepcopy(document["config"]), ours["config"]
        for key in REQUIRED_IN_PROD:
            if env == "prod" and key in own:
                config.setdefault(key, own[key])
        certificates = {
            e["name"].replace(template, team): e["ingress"]["certificateArn"]
            for e in (own.get("mlops:serving") or {}).get("endpoints") or []
            if "certificateArn" in (e.get("ingress") or {})
        }
        for endpoint in (config.get("mlops:serving") or {}).get("endpoints") or []:
            ingress = endpoint.get("ingress")
            if ingress and endpoint["name"] in certificates:
                ingress.setdefault("certificateArn", certificates[endpoint["name"]])
        adapted[name] = dict(document, config=config)
    return adapted


def _vary(config: dict[str, Any], index: int, env: str) -> None:
    """Teams differ: more endpoints, feature views and pipelines here and there (and a quota
    that makes room for the workloads added)."""
    added = 0
    serving = config.get("mlops:serving") or {}
    endpoints = serving.get("endpoints") or []
    if endpoints:
        for extra in range(index % 3):  # one to three endpoints
            endpoint = copy.deepcopy(endpoints[0])
            endpoint.pop("ingress", None)
            endpoint["name"] = f"{endpoint['name']}-{extra + 2}"
            endpoints.append(endpoint)
            added += 1
    store = config.get("mlops:featureStore") or {}
    views = store.get("featureViews") or []
    if views and index % 4 == 1:
        view = copy.deepcopy(views[0])
        view["name"] = f"{view['name']}_v2"
        view["source"] = dict(view["source"], path=f"{view['name']}/")
        views.append(view)
    training = config.get("mlops:training") or {}
    pipelines = training.get("pipelines") or []
    if pipelines and index % 5 == 2:
        pipeline = copy.deepcopy(pipelines[0])
        pipeline["name"] = f"{pipeline['name']}-nightly"
        pipeline["schedule"] = "0 2 * * *"
        pipeline.pop("continuousTraining", None)
        pipelines.append(pipeline)
        added += 1
    if added:  # the namespace's quota must hold every workload at its peak
        quota = config.setdefault("mlops:training", {}).setdefault("quota", {})
        for key, default in QUOTA_DEFAULTS[env].items():
            quota[key] = _times(str(quota.get(key, default)), 1 + added)


QUOTA_DEFAULTS = {"dev": {"cpu": "16", "memory": "64Gi"}, "prod": {"cpu": "64", "memory": "256Gi"}}
"""The team namespace's quota when a stack sets none (components/config/training.py)."""


def _times(quantity: str, factor: int) -> str:
    """A Kubernetes quantity (`16`, `500m`, `64Gi`) ``factor`` times over."""
    number = quantity.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return f"{float(number) * factor:g}{quantity[len(number) :]}"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def export(revision: str, folder: Path) -> Path:
    """The tree of ``revision`` of this repository, written to ``folder``."""
    archive = subprocess.run(
        ["git", "archive", revision], cwd=ROOT, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def make_repository(folder: Path, code: Path, stacks: dict[str, dict[str, Any]]) -> Path:
    """A git repository with ``code``'s program and tool, its platform project and ``stacks``."""
    folder.mkdir()
    for name in (*CODE, PLATFORM):
        source = code / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, folder / name)
    (folder / "stacks").mkdir()
    for name, document in stacks.items():
        (folder / "stacks" / name).write_text(yaml.safe_dump(document, sort_keys=False))
    (folder / ".gitignore").write_text("/.mlops/\n__pycache__/\n")
    _git(folder, "init", "-q", "-b", "main")
    _git(folder, "add", ".")
    _git(folder, "-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-qm", "base")
    # Every stack must plan on both sides, or the figures time error messages.
    run = subprocess.run([sys.executable, "-c", CLI, "validate"], cwd=folder, capture_output=True)
    if run.returncode != 0:
        raise RuntimeError(
            f"the stacks of {folder} do not validate with its own code:\n"
            f"{run.stderr.decode()[-3000:]}"
        )
    return folder


# -- measurements -------------------------------------------------------------------------------


def mlops(repo: Path, *args: str) -> float:
    """Seconds `mlops ARGS` takes in ``repo`` with that repository's own code."""
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", CLI, *args], cwd=repo, capture_output=True)
    seconds = time.perf_counter() - start
    if run.returncode not in (0, 2):  # 2: there are changes
        raise RuntimeError(
            f"mlops {' '.join(args)} in {repo}:\n{run.stderr.decode()[-3000:]}{_failed(run.stdout)}"
        )
    return seconds


def _failed(output: bytes) -> str:
    """The stacks a `--format json` diff found broken or in violation of the policy pack."""
    try:
        diffs = json.loads(output)
    except ValueError:
        return output.decode()[-3000:]
    return "".join(
        f"\n{d.get('stack')}: {(d.get('error') or '')[:1000]} {d.get('violations') or ''}"
        for d in diffs
        if isinstance(d, dict) and (d.get("error") or d.get("violations"))
    )


def python(tree: Path, script: str, *args: str) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=tree, capture_output=True, text=True
    )
    if run.returncode != 0:
        raise RuntimeError(f"in {tree}:\n{run.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
    return result


@contextmanager
def edited(file: Path, text: str) -> Iterator[None]:
    original = file.read_text()
    file.write_text(text)
    try:
        yield
    finally:
        file.write_text(original)


def diff_scenarios(repo: Path, *, cached: bool, stack: str) -> dict[str, float]:
    """The diff figures in one repository (``cached``: this code has the plan cache)."""
    cache = repo / CACHE
    module = repo / "components" / "serving.py"
    source = module.read_text()
    stack_file = repo / "stacks" / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(stack_file.read_text())
    document["config"]["mlops:serving"]["endpoints"][0]["replicas"]["max"] += 1
    figures: dict[str, float] = {}
    diff = ("diff", "--base", "HEAD", "--format", "json")
    shutil.rmtree(cache, ignore_errors=True)
    with edited(module, source + "\n# a one-line change\n"):
        figures["code cold"] = mlops(repo, *diff)
    if cached:  # the base side is in the cache now; the head side changes again
        with edited(module, source + "\n# another one-line change\n"):
            figures["code base cached"] = mlops(repo, *diff)
    with edited(stack_file, yaml.safe_dump(document, sort_keys=False)):
        if cached:
            figures["config base cached"] = mlops(repo, *diff)
        shutil.rmtree(cache, ignore_errors=True)
        figures["config cold"] = mlops(repo, *diff)
    return figures


def synthetic_stack(folder: Path, endpoints: int, templates: Path) -> Path:
    """fraud-dev (of the tree at ``templates``) with ``endpoints`` real-time endpoints serving
    one external model."""
    document = yaml.safe_load((templates / "stacks" / "Pulumi.fraud-dev.yaml").read_text())
    config = document["config"]
    template = config["mlops:serving"]["endpoints"][0]
    config["mlops:serving"] = {
        "externalModels": ["shared-model"],
        "endpoints": [
            dict(copy.deepcopy(template), name=f"ep-{i:04d}", model="shared-model")
            for i in range(endpoints)
        ],
    }
    # Room in the namespace's quota for every endpoint at its autoscaler's maximum.
    config.setdefault("mlops:training", {})["quota"] = {
        "cpu": str(16 + 4 * endpoints),
        "memory": f"{64 + 8 * endpoints}Gi",
        "pods": min(10_000, 50 + 4 * endpoints),
    }
    file = folder / f"endpoints-{endpoints}" / "Pulumi.fraud-dev.yaml"
    file.parent.mkdir(exist_ok=True)
    file.write_text(yaml.safe_dump(document, sort_keys=False))
    return file


RESOURCES_PER_ENDPOINT = 13
"""What each endpoint adds (Deployment, Service, HPA, PDB, identity, alarms, ...): sizes in
resources are turned into endpoint counts with it; the tables give the real counts."""


def growth(sizes: list[int], baseline: Path, now: Path, folder: Path) -> list[str]:
    rows = [
        "| endpoints | resources | today (s) | now (s) | ratio | bare SDK mocks (s) "
        "| s per 1,000 resources: today | now | bare SDK |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes: list[str] = []
    for size in sizes:
        endpoints = max(1, math.ceil((size - 80) / RESOURCES_PER_ENDPOINT))
        file = synthetic_stack(folder, endpoints, baseline)
        old = python(baseline, PLAN_ONE, str(file))
        new = python(now, PLAN_ONE, str(file))
        bare = python(now, BARE_SDK, str(file))
        count = new["resources"]
        per = [s / count * 1000 for s in (old["seconds"], new["seconds"], bare["seconds"])]
        rows.append(
            f"| {endpoints} | {count:,} | {old['seconds']:.1f} | {new['seconds']:.1f} "
            f"| {old['seconds'] / new['seconds']:.2f} | {bare['seconds']:.1f} "
            f"| {per[0]:.2f} | {per[1]:.2f} | {per[2]:.2f} |"
        )
        print(rows[-1], file=sys.stderr, flush=True)
        if new["refused"]:
            notes.append(
                f"- {endpoints} endpoints: this code's preflight refuses "
                + "; ".join(sorted(set(new["refused"])))
            )
    if notes:
        rows += ["", "Planned whole and timed, though `mlops plan` would refuse them:", *notes]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="main", help="git revision to compare with")
    parser.add_argument("--teams", type=int, default=50, help="teams (each has dev and prod)")
    parser.add_argument("--sizes", default="1000,5000,10000", help="resources of one stack")
    parser.add_argument("--skip-diff", action="store_true")
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",") if s]
    commit = _git(ROOT, "rev-parse", "--short", options.baseline).strip()
    load = os.getloadavg()[0]
    lines = [
        f"Baseline (today): `{options.baseline}` ({commit}); now: this tree. "
        f"{os.cpu_count()} cores, load average {load:.1f} at the start.",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as scratch:
        folder = Path(scratch)
        baseline_code = export(options.baseline, folder / "baseline-code")
        if not options.skip_diff:
            stacks = team_stacks(options.teams, baseline_code)
            old = make_repository(folder / "today", baseline_code, stacks)
            new = make_repository(folder / "now", ROOT, for_this_code(stacks))
            platform = len(list((new / PLATFORM / "stacks").glob("Pulumi.*.yaml")))
            stack = next(iter(stacks)).removeprefix("Pulumi.").removesuffix(".yaml")
            today = diff_scenarios(old, cached=False, stack=stack)
            print(f"today: {today}", file=sys.stderr, flush=True)
            now = diff_scenarios(new, cached=True, stack=stack)
            print(f"now: {now}", file=sys.stderr, flush=True)
            lines += [
                f"`mlops diff --base HEAD` in a generated repository of {len(stacks)} team "
                f"stacks and {platform} platform stacks:",
                "",
                "| change | today (s) | now (s) | ratio | target (s) |",
                "|---|---:|---:|---:|---:|",
                _row(
                    f"one line under `components/`: all {len(stacks) + platform} stacks, both "
                    "sides, cold",
                    today["code cold"],
                    now["code cold"],
                    60,
                ),
                _row(
                    "the same, the base side planned before (cached)",
                    today["code cold"],
                    now["code base cached"],
                    30,
                ),
                _row(
                    "a config change to one stack, cold",
                    today["config cold"],
                    now["config cold"],
                    5,
                ),
                _row(
                    "a config change to one stack, the base side cached",
                    today["config cold"],
                    now["config base cached"],
                    5,
                ),
                "",
                "Today's code has no cache: its figure for a cached base is its cold one.",
                "",
            ]
        if sizes:
            lines += growth(sizes, baseline_code, ROOT, folder)
    print("\n".join(lines))


def _row(what: str, today: float, now: float, target: float) -> str:
    return f"| {what} | {today:.1f} | {now:.1f} | {today / now:.1f}x | < {target} |"


if __name__ == "__main__":
    main()
