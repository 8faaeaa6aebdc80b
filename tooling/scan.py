"""`mlops scan`: a second opinion on the plans, from checkov's Kubernetes checks.

Each stack's planned Kubernetes objects are written as manifests (one multi-document YAML file
per stack, the objects as `kubectl apply` would send them: pulumi-kubernetes' inputs carry
apiVersion, kind, metadata and spec in the API's camelCase), and checkov's Kubernetes framework
runs over them. A finding fails the scan unless the repository's skip list (`SKIPS_FILE`) names
its check for that stack and resource, with a reason.

checkov pins many packages (older pulumi, boto3, numpy among them), so it lives in a virtualenv
of its own (`make scan-env`: `.venv-scan`) and runs as a program; nothing here imports it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tooling.manifests import manifests
from tooling.plan import Plan

SKIPS_FILE = Path("policy") / "checkov-skips.yaml"
"""The skip list, relative to the repository root."""
SCAN_FOLDER = Path(".mlops") / "scan"
"""Where the manifests are written (relative to the repository root), one file per stack."""
SCAN_VENV = Path(".venv-scan")
CHECKOV_ENV = "MLOPS_CHECKOV"
"""An environment variable naming the checkov program to run (default: `.venv-scan`'s)."""
CHECK_ID = re.compile(r"^CKV2?_K8S_\d+$")
FIRST_KEYS = ("apiVersion", "kind", "metadata")


class ScanError(RuntimeError):
    """checkov is missing or failed to run, or the skip list is malformed."""


@dataclass(frozen=True)
class Skip:
    """One entry of the skip list: a check not to fail on, where, and why."""

    check: str
    reason: str
    stacks: tuple[str, ...] = ("*",)
    """Stack names it applies to (shell patterns: `*-dev`, `platform/*`)."""
    resources: tuple[str, ...] = ("*",)
    """checkov's resource ids it applies to (`Kind.namespace.name`, shell patterns)."""

    def covers(self, finding: Finding) -> bool:
        return (
            finding.check == self.check
            and any(fnmatch.fnmatchcase(finding.stack, p) for p in self.stacks)
            and any(fnmatch.fnmatchcase(finding.resource, p) for p in self.resources)
        )


@dataclass(frozen=True)
class Finding:
    stack: str
    resource: str
    """checkov's id of the object: `Kind.namespace.name`."""
    check: str
    title: str
    lines: tuple[int, int] = (0, 0)
    """Where the object is in the stack's manifest file."""


@dataclass
class StackResult:
    stack: str
    objects: int
    failed: list[Finding] = field(default_factory=list)
    skipped: list[Finding] = field(default_factory=list)
    passed: int = 0


@dataclass
class ScanReport:
    results: list[StackResult]
    checkov_version: str
    unused_skips: list[Skip] = field(default_factory=list)
    """Entries of the skip list no finding needed (stale: remove them)."""

    @property
    def failed(self) -> list[Finding]:
        return [f for r in self.results for f in r.failed]


# -- the skip list --------------------------------------------------------------------------------


def load_skips(path: Path) -> list[Skip]:
    """The skip list; raises ScanError naming every malformed entry."""
    document = yaml.safe_load(path.read_text()) if path.exists() else None
    entries = (document or {}).get("skips") or []
    if not isinstance(entries, list):
        raise ScanError(f"{path}: `skips` should be a list of entries")
    skips, problems = [], []
    for i, entry in enumerate(entries):
        where = f"{path}: skips[{i}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: should be a mapping with check and reason")
            continue
        unknown = set(entry) - {"check", "reason", "stacks", "resources"}
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
        check, reason = entry.get("check"), entry.get("reason")
        if not isinstance(check, str) or not CHECK_ID.match(check):
            problems.append(f"{where}: check should be a checkov Kubernetes id (got {check!r})")
        if not isinstance(reason, str) or len(reason.split()) < 5:
            problems.append(f"{where}: reason should say why, in a sentence (got {reason!r})")
        lists = {key: entry.get(key, ["*"]) for key in ("stacks", "resources")}
        for key, value in lists.items():
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(v, str) for v in value)
            ):
                problems.append(f"{where}: {key} should be a list of patterns (got {value!r})")
        if not problems:
            skips.append(
                Skip(
                    str(check),
                    " ".join(str(reason).split()),
                    tuple(lists["stacks"]),
                    tuple(lists["resources"]),
                )
            )
    if problems:
        raise ScanError("\n".join(problems))
    return skips


# -- manifests ------------------------------------------------------------------------------------


def stack_manifests(plan: Plan) -> list[dict[str, Any]]:
    """The plan's Kubernetes objects, apiVersion, kind and metadata first (as kubectl shows)."""
    return [
        {
            **{key: obj[key] for key in FIRST_KEYS if key in obj},
            **{key: value for key, value in obj.items() if key not in FIRST_KEYS},
        }
        for obj in manifests(plan)
    ]


def manifest_file(folder: Path, stack: str) -> Path:
    """`fraud-dev` -> folder/fraud-dev.yaml, `platform/dev` -> folder/platform/dev.yaml."""
    return folder / f"{stack}.yaml"


def write_manifests(plan: Plan, folder: Path) -> tuple[Path, int]:
    """Write the plan's objects to their stack's file under ``folder``: (file, objects)."""
    objects = stack_manifests(plan)
    file = manifest_file(folder, plan.stack)
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("w") as out:
        out.write(f"# {plan.stack}: the planned Kubernetes objects (mlops scan)\n")
        yaml.safe_dump_all(objects, out, sort_keys=False, default_flow_style=False)
    return file, len(objects)


# -- checkov --------------------------------------------------------------------------------------


def checkov_program(root: Path) -> Path | None:
    """The checkov to run: $MLOPS_CHECKOV, else the repository's `.venv-scan`, else PATH's."""
    named = os.environ.get(CHECKOV_ENV)
    if named:
        return Path(named)
    local = root / SCAN_VENV / "bin" / "checkov"
    if local.exists():
        return local
    found = shutil.which("checkov")
    return Path(found) if found else None


def _checkov(
    program: Path, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    # --skip-download: nothing is fetched from Prisma Cloud (no API key, maybe no network).
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_NO_OUTPUT_COLORS": "1"}
    return subprocess.run(
        [str(program), *args, "--skip-download"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
    )


def checkov_version(program: Path) -> str:
    done = _checkov(program, "--version")
    if done.returncode != 0:
        raise ScanError(f"{program} --version failed:\n{done.stderr.strip()[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def kubernetes_checks(program: Path) -> dict[str, str]:
    """checkov's Kubernetes checks: id -> title (from `checkov --list`)."""
    done = _checkov(program, "--list", "--framework", "kubernetes")
    if done.returncode != 0:
        raise ScanError(f"{program} --list failed:\n{done.stderr.strip()[-2000:]}")
    checks = {}
    for line in done.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and CHECK_ID.match(cells[1]):
            checks[cells[1]] = cells[4]
    return checks


def run_checkov(
    program: Path, folder: Path, stacks: Mapping[Path, str]
) -> tuple[list[Finding], Counter[str]]:
    """checkov's Kubernetes framework over ``folder``: every failed check, and how many passed,
    by stack (``stacks``: manifest file -> stack). Raises ScanError when it cannot run or
    parse a file."""
    # Files, not `--directory`: checkov skips hidden folders, and `.mlops/scan` is one.
    files = [arg for path in sorted(stacks) for arg in ("--file", str(path))]
    done = _checkov(
        program, *files, "--framework", "kubernetes", "--output", "json", "--compact",
    )  # fmt: skip
    try:
        data = json.loads(done.stdout) if done.stdout.strip() else None
    except json.JSONDecodeError:
        data = None
    if done.returncode not in (0, 1) or data is None:
        raise ScanError(
            f"checkov failed (exit {done.returncode}):\n"
            f"{(done.stderr or done.stdout).strip()[-3000:]}"
        )
    reports = data if isinstance(data, list) else [data]
    by_file = {path.resolve(): stack for path, stack in stacks.items()}
    findings = []
    passed: Counter[str] = Counter()

    def stack_of(check: Mapping[str, Any]) -> str:
        path = Path(check.get("file_abs_path") or folder / check["file_path"].lstrip("/"))
        return by_file.get(path.resolve(), path.stem)

    for report in reports:
        if not isinstance(report, Mapping) or "results" not in report:
            continue  # nothing scanned: checkov prints only a summary
        results = report["results"]
        errors = results.get("parsing_errors") or []
        if errors:
            raise ScanError(f"checkov could not parse: {', '.join(map(str, errors))}")
        passed.update(stack_of(check) for check in results.get("passed_checks") or [])
        for failed in results.get("failed_checks") or []:
            lines = failed.get("file_line_range") or [0, 0]
            findings.append(
                Finding(
                    stack=stack_of(failed),
                    resource=str(failed.get("resource")),
                    check=str(failed["check_id"]),
                    title=str(failed.get("check_name")),
                    lines=(int(lines[0]), int(lines[-1])),
                )
            )
    return findings, passed


def judge(
    stacks: Sequence[tuple[str, int]], findings: Iterable[Finding], skips: Sequence[Skip]
) -> tuple[list[StackResult], list[Skip]]:
    """Each stack's findings, split into failed and skipped; and the skips nothing used."""
    results = {stack: StackResult(stack, objects) for stack, objects in stacks}
    used: set[Skip] = set()
    for finding in findings:
        result = results.setdefault(finding.stack, StackResult(finding.stack, 0))
        skip = next((s for s in skips if s.covers(finding)), None)
        if skip is None:
            result.failed.append(finding)
        else:
            used.add(skip)
            result.skipped.append(finding)
    return list(results.values()), [s for s in skips if s not in used]


def scan(
    plans: Sequence[Plan], *, root: Path, folder: Path, program: Path, skips: Sequence[Skip]
) -> ScanReport:
    """Render every plan's manifests into ``folder`` (emptied first), run checkov over them,
    and judge its findings against ``skips``."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    written = {plan.stack: write_manifests(plan, folder) for plan in plans}
    findings, passed = run_checkov(
        program, folder, {file: stack for stack, (file, _) in written.items()}
    )
    results, unused = judge([(s, n) for s, (_, n) in written.items()], findings, skips)
    for result in results:
        result.passed = passed[result.stack]
    unread = [r.stack for r in results if r.objects and not (r.passed or r.failed or r.skipped)]
    if unread:
        raise ScanError(f"checkov ran no check on the objects of {', '.join(unread)}")
    # A skip for stacks not scanned this time is not stale.
    unused = [
        s for s in unused if any(fnmatch.fnmatchcase(st, p) for st in written for p in s.stacks)
    ]
    return ScanReport(results, checkov_version(program), unused)
