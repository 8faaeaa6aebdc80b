"""`mlops`: the platform team's command line (validate, new-team, schema, plan)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree
from typer.core import TyperGroup

from components.config import ConfigError, Environment, stack_name_of
from policy.rules import Violation, check_plan
from tooling import plan_cache, planner, scaffold, schema
from tooling.plan import (
    Plan,
    Planned,
    PlannedResource,
    plan_stack,
    project_of,
    shown_path,
    stack_file,
    validate_stack_file,
)
from tooling.plan_cache import PlanCache
from tooling.project import (
    PLATFORM_FOLDER,
    Project,
    ProjectNotFound,
    Workspace,
    find_workspace,
    nearest_project,
)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
PIPED_WIDTH = 1_000
"""Columns when output goes to a file, a pipe or CI: no terminal to fit, so nothing is cut."""


class _Commands(TyperGroup):
    """A command run outside any Pulumi project says so, as a user's mistake (no traceback)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ProjectNotFound as error:
            err.print(f"[red]✗[/] {escape(str(error))}", highlight=False)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="mlops",
    help="Per-team MLOps stacks: validate configs, add a team, plan offline.",
    cls=_Commands,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global_options(
    cwd: Annotated[
        Path | None,
        typer.Option(
            "--cwd",
            "-C",
            help="Run as if started in DIR (the project is the nearest Pulumi.yaml above it).",
            exists=True,
            file_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    # As `pulumi --cwd` and `git -C`: stack files, folders and the project are found from DIR.
    if cwd is not None:
        os.chdir(cwd)
    # rich falls back to 80 columns without a terminal (and honours COLUMNS when set).
    for console in (out, err):
        if not console.is_terminal and "COLUMNS" not in os.environ:
            console.width = PIPED_WIDTH


Jobs = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        "-j",
        min=1,
        help="Plan in up to N processes at once (default: one per core).",
        show_default=False,
    ),
]
NoCache = Annotated[
    bool,
    typer.Option(
        "--no-cache",
        help=f"Plan every stack afresh; do not read or write the plan cache ({plan_cache.FOLDER}).",
    ),
]


def _cache(no_cache: bool, workspace: Workspace) -> PlanCache | None:
    return None if no_cache else PlanCache(workspace.root / plan_cache.FOLDER)


def _planned(
    files: Sequence[Path],
    *,
    jobs: int | None,
    no_cache: bool,
    progress: Callable[[str], None] | None = None,
) -> Iterator[tuple[Path, Plan | str]]:
    """Each file's plan or config error. Several stacks of the working project are planned in
    worker processes, one per core, through the plan cache; a single stack, or a file from
    elsewhere, in this process. ``progress`` is told each pooled stack as it is planned."""
    names: dict[Path, str | None] = {}
    if len(files) > 1:
        try:
            workspace = find_workspace()
        except ProjectNotFound:  # files named from outside any project: planned here
            pass
        else:
            names = {file: _workspace_stack(file, workspace) for file in files}
    pooled = [file for file in files if names.get(file)]
    answers: dict[Path, Planned] = {}
    if pooled:
        tree = planner.Tree(workspace.root)
        with err.status(f"planning {len(pooled)} stacks under the mock engine"):
            planned = planner.plan_stacks(
                {tree: [str(names[file]) for file in pooled]},
                jobs=jobs,
                cache=_cache(no_cache, workspace),
                progress=progress,
            )[tree]
        answers = {file: planned[str(names[file])] for file in pooled}
    for file in files:
        answer = answers.get(file)
        if answer is None:
            try:
                with err.status(f"planning {file.name} under the mock engine"):
                    answer = plan_stack(file)
            except ConfigError as error:
                answer = str(error)
        yield file, answer


def _workspace_stack(file: Path, workspace: Workspace) -> str | None:
    """`fraud-dev` or `platform/dev` when ``file`` is that stack's file in ``workspace``."""
    name = stack_name_of(file)
    for stack in (name, f"{PLATFORM_FOLDER}/{name}") if name else ():
        if (workspace.root / plan_cache.stack_path(stack)).resolve() == file.resolve():
            return stack
    return None


def _stack_files(stacks: Sequence[str], directory: Path | None) -> list[Path]:
    """The named stacks, else every stack file in ``directory``, else the working project's
    (the platform's first)."""
    if stacks:
        return [stack_file(s, directory) for s in stacks]
    if directory is not None:
        found = sorted(directory.glob("Pulumi.*.yaml"))
    else:
        found = find_workspace().stack_files()
    return [shown_path(p) for p in found]


def _working_on(projects: Iterable[Project | None]) -> None:
    """The output header: which project(s) a command works on (on stderr: stdout is data)."""
    named = list(
        dict.fromkeys(str(p) if p else "stack files outside any Pulumi project" for p in projects)
    )
    if named:
        label = "project" if len(named) == 1 else "projects"
        err.print(f"[dim]{label}: {escape(', '.join(named))}[/]", highlight=False)


def _projects_of(files: Iterable[Path]) -> list[Project | None]:
    return [nearest_project(file.parent) for file in files]


def _report(error: ConfigError | str) -> None:
    for issue in error.issues if isinstance(error, ConfigError) else error.splitlines():
        err.print(f"[red]✗[/] {escape(str(issue))}", highlight=False, soft_wrap=True)


@app.command()
def validate(
    stacks: Annotated[
        list[str] | None, typer.Argument(help="Stack names or files (default: every stack file).")
    ] = None,
    stacks_dir: Annotated[
        Path | None,
        typer.Option(help="Folder of stack files (default: the project's).", show_default=False),
    ] = None,
) -> None:
    """Validate stack files offline; every problem of every file at once. Exit 1 on any problem."""
    files = _stack_files(stacks or [], stacks_dir)
    if not files:
        where = stacks_dir or find_workspace()
        err.print(f"[red]✗[/] no stack files (Pulumi.<team>-<env>.yaml) in {where}")
        raise typer.Exit(1)
    _working_on(_projects_of(files))
    problems = 0
    for file in files:
        try:
            validate_stack_file(file)
        except ConfigError as error:
            problems += len(error.issues)
            _report(error)
        else:
            out.print(f"[green]✓[/] {escape(str(file))}", highlight=False)
    if problems:
        err.print(f"{problems} problem(s) in {len(files)} stack file(s)")
        raise typer.Exit(1)


@app.command("new-team")
def new_team(
    team: Annotated[str, typer.Argument(help="Team name: lower-case letters, digits and '-'.")],
    env: Annotated[list[Environment], typer.Option("--env", help="Environment(s) to create.")] = [  # noqa: B006
        Environment.dev
    ],
    region: Annotated[str, typer.Option(help="AWS region.")] = "eu-west-1",
    platform: Annotated[
        str, typer.Option(help="Platform stack exporting the cluster; {env} is replaced.")
    ] = "acme/mlops-platform/{env}",
    alert_email: Annotated[
        str | None, typer.Option(help="Who gets paged (default: <team>-oncall@example.com).")
    ] = None,
    key_admin: Annotated[
        list[str] | None,
        typer.Option(
            "--key-admin",
            help="IAM role ARN that administers the team's KMS keys (repeatable; prod needs "
            "one: the role that runs `pulumi up`).",
        ),
    ] = None,
    stacks_dir: Annotated[
        Path | None,
        typer.Option(help="Folder of stack files (default: the project's).", show_default=False),
    ] = None,
) -> None:
    """Write stacks/Pulumi.<team>-<env>.yaml for each environment, from sensible defaults."""
    stacks_dir = stacks_dir or find_workspace().stacks
    try:
        written = scaffold.write_team(
            team,
            env,
            stacks_dir=stacks_dir,
            region=region,
            platform=platform,
            alert_email=alert_email or f"{team}-oncall@example.com",
            key_administrators=key_admin or (),
        )
    except scaffold.ScaffoldError as error:
        for line in str(error).splitlines():
            err.print(f"[red]✗[/] {escape(line)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    for file in written:
        out.print(f"[green]✓[/] wrote {file}", highlight=False)
    for warning in scaffold.platform_warnings(
        platform, env, region=region, platform_stacks=stacks_dir.parent / "platform" / "stacks"
    ):
        err.print(f"[yellow]![/] {escape(warning)}", highlight=False, soft_wrap=True)
    out.print(f"Next: edit them, then `mlops plan {written[0].stem.removeprefix('Pulumi.')}`.")
    if Environment.prod in env:
        out.print(
            "Prod runs a pushed image: `mlops image build --push <repository>` prints "
            "<repository>@sha256:<digest>; `pulumi config set mlops:image` to it "
            "(until then `mlops validate` refuses the placeholder).",
            highlight=False,
        )


@app.command("schema")
def schema_command(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
) -> None:
    """Print the JSON Schema of a stack file's `mlops:` config (for editors)."""
    text = json.dumps(schema.stack_file_schema(), indent=2) + "\n"
    if output:
        output.write_text(text)
        err.print(f"wrote {output}")
    else:
        sys.stdout.write(text)


@app.command()
def plan(
    stack: Annotated[
        str,
        typer.Argument(
            help="Stack name (fraud-dev, platform/prod for the platform) or stack file."
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print `pulumi preview --json`-shaped steps.")
    ] = False,
    record_urns: Annotated[
        bool,
        typer.Option(
            "--record-urns",
            help="Write the stack's URN record (urns/<stack>.txt beside its file) from this plan.",
        ),
    ] = False,
) -> None:
    """Show what `pulumi up` would create for STACK: the real program under the mock engine."""
    file = stack_file(stack)
    _working_on([project_of(file)])
    try:
        with err.status(f"planning {file.name} under the mock engine"):
            result = plan_stack(file)
    except ConfigError as error:
        _report(error)
        raise typer.Exit(1) from None
    if record_urns:
        from tooling.urns import rerecord

        err.print(escape(rerecord(result, file)), highlight=False)
    if as_json:
        sys.stdout.write(json.dumps(result.preview_json(), indent=2, default=str) + "\n")
        return
    out.print(resource_tree(result))
    out.print(type_table(result))
    if result.outputs:
        outputs = Table("output", "value", title="Stack outputs", title_justify="left")
        for key, value in result.outputs.items():
            outputs.add_row(key, _short(value, 100))
        out.print(outputs)


@app.command()
def cost(
    stacks: Annotated[
        list[str] | None, typer.Argument(help="Stack names or files (default: every stack file).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the estimate as JSON.")] = False,
    jobs: Jobs = None,
    no_cache: NoCache = False,
) -> None:
    """Estimate what STACK costs a month: each resource's SKU, unit price, quantity, monthly
    figure and low-high range, from the offline plan, the shipped price table and the stack's
    usage assumptions (mlops:usage). Exit 1 on a config or pricing problem, or a budget passed."""
    from policy.cost import PriceError
    from tooling.cost import cost_json, cost_table, plan_cost

    files = _stack_files(stacks or [], None)
    _working_on(_projects_of(files))
    reports: list[dict[str, Any]] = []
    failed = False
    for file, result in _planned(files, jobs=jobs, no_cache=no_cache):
        if isinstance(result, str):
            _report(result)
            failed = True
            continue
        try:
            priced = plan_cost(result)
        except PriceError as error:
            err.print(f"[red]✗[/] {escape(str(file))}: {escape(str(error))}", highlight=False)
            failed = True
            continue
        found = priced.estimate
        failed |= bool(priced.budget and priced.budget.verdict == "over")
        if as_json:
            reports.append(cost_json(result.stack, priced))
            continue
        # Off a terminal (CI logs, a pipe) the table keeps its natural width.
        out.print(cost_table(result.stack, priced), width=None if out.is_terminal else 220)
        for item in found.unpriced:
            out.print(
                f"[yellow]not priced[/] {escape(item.name)} ({item.type}): {escape(item.reason)}",
                highlight=False,
            )
        out.print(
            f"{found.no_charge} resource(s) AWS does not charge for by themselves (IAM, "
            "security groups, most Kubernetes objects); prices: "
            f"{escape(found.source)}",
            highlight=False,
        )
        if priced.budget:
            colour = {"within": "green", "warning": "yellow", "over": "red"}[priced.budget.verdict]
            out.print(
                f"[{colour}]budget[/] {escape(result.stack)} {escape(priced.budget.message)}",
                highlight=False,
            )
    if as_json:
        sys.stdout.write(json.dumps(reports, indent=2) + "\n")
    if failed:
        raise typer.Exit(1)


class Format(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


@app.command()
def diff(
    base: Annotated[
        str, typer.Option("--base", help="Git ref to compare with (e.g. origin/main).")
    ],
    stacks: Annotated[
        list[str] | None, typer.Argument(help="Stacks (default: those the change touches).")
    ] = None,
    output_format: Annotated[
        Format, typer.Option("--format", help="text, markdown (one PR comment) or json.")
    ] = Format.text,
    list_only: Annotated[
        bool,
        typer.Option("--list", help="Only print the changed stacks (a JSON list); no planning."),
    ] = False,
    jobs: Jobs = None,
    no_cache: NoCache = False,
) -> None:
    """What the change since BASE would do to each stack, with the policy pack's verdict on
    the new side. Exit 0: no changes, 2: changes, 1: an error or a policy violation."""
    from tooling import diff_report
    from tooling.cost import diff_cost
    from tooling.diff import GitError, changed_stacks, diff_stacks

    workspace = find_workspace()
    if list_only:
        try:
            sys.stdout.write(json.dumps(changed_stacks(base, workspace.root)) + "\n")
        except GitError as error:
            err.print(f"[red]✗[/] {escape(str(error))}")
            raise typer.Exit(1) from None
        return

    _working_on(workspace.projects())
    try:
        with err.status(f"planning both sides against {base}"):
            diffs = diff_stacks(
                base,
                stacks or [],
                repo=workspace.root,
                policy=_policy_lines,
                cost=diff_cost,
                jobs=jobs,
                cache=_cache(no_cache, workspace),
            )
    except (GitError, RuntimeError) as error:
        err.print(f"[red]✗[/] {escape(str(error))}")
        raise typer.Exit(1) from None
    render = {
        Format.text: diff_report.text,
        Format.json: diff_report.as_json,
        Format.markdown: lambda d: diff_report.markdown(d, base=base),
    }[output_format]
    sys.stdout.write(render(diffs))
    if any(d.error or d.violations for d in diffs):
        raise typer.Exit(1)
    if any(d.changes for d in diffs):
        raise typer.Exit(2)


def _policy_lines(result: Plan) -> list[str]:
    """The violations that fail the plan (warnings, like the budget's, show with the cost)."""
    return [
        f"{v.rule} on {v.urn.rsplit('::', 1)[-1]}: {v.message}"
        for v in check_plan(result)
        if not v.advisory
    ]


KEY_INPUTS = (
    "name",
    "bucket",
    "identifier",
    "instanceClass",
    "multiAz",
    "deletionProtection",
    "deletionProtectionEnabled",
    "backupRetentionPeriod",
    "billingMode",
    "capacityType",
    "instanceTypes",
    "scalingConfig",
    "threshold",
    "metricName",
    "addonName",
    "addonVersion",
    "version",
    "cidrBlock",
    "availabilityZone",
    "metadata.name",
    "spec.schedule",
    "spec.replicas",
    "spec.minReplicas",
    "spec.maxReplicas",
)


def key_inputs(resource: PlannedResource) -> dict[str, Any]:
    """The few inputs a reviewer looks at first, where the resource has them."""
    shown: dict[str, Any] = {}
    for path in KEY_INPUTS:
        value: Any = resource.inputs
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value not in (None, "", [], {}):
            shown[path.rsplit(".", 1)[-1]] = value
    return shown


def resource_tree(result: Plan) -> Tree:
    root = Tree(f"[bold]{result.stack}[/] · {len(result.resources)} resources", highlight=False)
    nodes: dict[str | None, Tree] = {}
    for resource in result.resources:
        parent = nodes.get(resource.parent, root)
        detail = ", ".join(f"{k}={_short(v, 40)}" for k, v in key_inputs(resource).items())
        flags = " [yellow]protected[/]" if resource.protect else ""
        flags += " [dim](read)[/]" if resource.read else ""
        label = f"[cyan]{resource.type}[/] [bold]{resource.name}[/]{flags}"
        nodes[resource.urn] = parent.add(f"{label}  [dim]{detail}[/]" if detail else label)
    return root


def type_table(result: Plan) -> Table:
    counts: dict[str, int] = {}
    for resource in result.resources:
        counts[resource.type] = counts.get(resource.type, 0) + 1
    table = Table("type", "count", title="By type", title_justify="left")
    for type_, count in sorted(counts.items()):
        table.add_row(type_, str(count))
    return table


def _short(value: Any, width: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command("policy")
def policy_command(
    stacks: Annotated[
        list[str] | None, typer.Argument(help="Stack names or files (default: every stack file).")
    ] = None,
    jobs: Jobs = None,
    no_cache: NoCache = False,
) -> None:
    """Check each stack's offline plan against the policy pack (as `pulumi preview
    --policy-pack policy` would); a table of what to change. Exit 1 on any violation."""
    files = _stack_files(stacks or [], None)
    _working_on(_projects_of(files))
    found: list[tuple[str, Violation]] = []
    failed = False
    for _, result in _planned(files, jobs=jobs, no_cache=no_cache):
        if isinstance(result, str):
            _report(result)
            failed = True
            continue
        violations = check_plan(result)
        for warning in (v for v in violations if v.advisory):
            err.print(
                f"[yellow]![/] {escape(result.stack)}: {warning.rule}: {escape(warning.message)}",
                highlight=False,
            )
        violations = [v for v in violations if not v.advisory]
        found += [(result.stack, v) for v in violations]
        if not violations:
            out.print(f"[green]✓[/] {escape(result.stack)}: every policy passes", highlight=False)
    if found:
        table = Table("stack", "rule", "resource", "what to change", title="Policy violations")
        for stack, violation in found:
            resource = escape(violation.urn.rsplit("::", 1)[-1])
            table.add_row(stack, violation.rule, resource, escape(violation.message))
        out.print(table)
        err.print(f"{len(found)} violation(s) in {len({s for s, _ in found})} stack(s)")
    if found or failed:
        raise typer.Exit(1)


@app.command()
def scan(
    stacks: Annotated[
        list[str] | None,
        typer.Argument(help="Stack names or files (default: every stack of both projects)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Folder for the manifests (emptied first; default: .mlops/scan/ of the project).",
            show_default=False,
        ),
    ] = None,
    jobs: Jobs = None,
    no_cache: NoCache = False,
) -> None:
    """A second opinion: write each stack's planned Kubernetes objects as manifests and run
    checkov's Kubernetes checks over them. Findings the skip list (policy/checkov-skips.yaml)
    does not name fail: exit 1, with a table of stack, resource, check and title."""
    import time

    from tooling import scan as scanner

    started = time.monotonic()
    root = find_workspace().root
    program = scanner.checkov_program(root)
    if program is None:
        err.print(
            "[red]✗[/] checkov is not installed: `make scan-env` puts it in a virtualenv of its "
            f"own ({scanner.SCAN_VENV}), or name the program in ${scanner.CHECKOV_ENV}",
            highlight=False,
        )
        raise typer.Exit(1)
    try:
        skips = scanner.load_skips(root / scanner.SKIPS_FILE)
    except scanner.ScanError as error:
        _report(str(error))
        raise typer.Exit(1) from None
    files = _stack_files(stacks or [], None)
    _working_on(_projects_of(files))
    done = 0

    def planned(stack: str) -> None:
        nonlocal done
        done += 1
        err.print(f"[dim]planned {done}/{len(files)}[/] {escape(stack)}", highlight=False)

    plans: list[Plan] = []
    failed = False
    workspace = find_workspace()
    for file, result in _planned(files, jobs=jobs, no_cache=no_cache, progress=planned):
        if isinstance(result, str):
            _report(result)
            failed = True
        else:
            # Named as the skip list names it: `platform/dev`, not the platform's `dev`.
            stack = _workspace_stack(file, workspace) or result.stack
            plans.append(dataclasses.replace(result, stack=stack))
    folder = output or root / scanner.SCAN_FOLDER
    try:
        with err.status(f"checkov over the manifests of {len(plans)} stacks in {folder}"):
            report = scanner.scan(plans, root=root, folder=folder, program=program, skips=skips)
    except scanner.ScanError as error:
        _report(str(error))
        raise typer.Exit(1) from None
    for judged in report.results:
        mark = "[red]✗[/]" if judged.failed else "[green]✓[/]"
        out.print(
            f"{mark} {escape(judged.stack)}: {judged.objects} objects, {judged.passed} checks "
            f"passed, {len(judged.failed)} failed, {len(judged.skipped)} skipped",
            highlight=False,
        )
    for skip in report.unused_skips:
        err.print(
            f"[yellow]![/] skip of {skip.check} for {', '.join(skip.stacks)} / "
            f"{', '.join(skip.resources)} matched no finding: remove it from {scanner.SKIPS_FILE}",
            highlight=False,
        )
    found = report.failed
    if found:
        table = Table("stack", "resource", "check", "title", title="checkov findings")
        for finding in found:
            table.add_row(
                escape(finding.stack),
                escape(finding.resource),
                finding.check,
                escape(finding.title),
            )
        out.print(table)
        err.print(
            f"{len(found)} finding(s) in {len({f.stack for f in found})} stack(s) not on the skip "
            f"list: fix them in components/, or add a skip with its reason to {scanner.SKIPS_FILE}"
        )
    skipped = sum(len(r.skipped) for r in report.results)
    err.print(
        f"checkov {report.checkov_version}: {len(report.results)} stack(s), {len(found)} "
        f"failed, {skipped} skipped, in {time.monotonic() - started:.0f} s; manifests in "
        f"{shown_path(folder)}",
        highlight=False,
    )
    if found or failed:
        raise typer.Exit(1)


image_app = typer.Typer(help="The runtime container image (Containerfile).", no_args_is_help=True)
app.add_typer(image_app, name="image")


@image_app.command("build")
def image_build(
    base_image: Annotated[
        str | None,
        typer.Option(
            help="Base image (default: python:3.11-slim; the local one with --make-base)."
        ),
    ] = None,
    make_base: Annotated[
        bool, typer.Option("--make-base", help="Make the base from Debian packages (debootstrap).")
    ] = False,
    tag: Annotated[
        str, typer.Option(help="Tag of the built image.")
    ] = "localhost/mlops-runtime:dev",
    engine_name: Annotated[
        str | None, typer.Option("--engine", help="podman or docker (default: what is there).")
    ] = None,
    push_to: Annotated[
        str | None,
        typer.Option(
            "--push", help="Push to this repository (the team's ECR repo) and print repo@digest."
        ),
    ] = None,
) -> None:
    """Build the runtime image with podman (or docker) and print its digest."""
    from tooling import image

    root = find_workspace().root
    _working_on([nearest_project(root)])
    try:
        needed = ["podman", "runc"] if engine_name in (None, "podman") else []
        needed += ["debootstrap"] if make_base else []
        if engine_name != "docker" and image.missing_tools(needed):
            image.install_tools(image.missing_tools(needed))
        engine = image.find_engine(engine_name)
        base = base_image or (image.LOCAL_BASE_IMAGE if make_base else image.DEFAULT_BASE_IMAGE)
        if make_base:
            if image.image_exists(engine, base):
                err.print(f"base image {base} is there already (remove it to make it again)")
            else:
                image.make_base(engine, base, log=err.print)
        built = image.build(engine, base_image=base, context=root, tag=tag)
        pushed = image.push(engine, tag, push_to) if push_to else None
    except image.ImageError as error:
        err.print(f"[red]✗[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(1) from None
    err.print(f"[green]✓[/] {built.tag}: {built.size / 1e6:.0f} MB, id {built.id}", highlight=False)
    # stdout carries only the reference, for scripts: `IMAGE=$(mlops image build --push ...)`.
    sys.stdout.write(f"{pushed or f'{built.tag}@{built.digest}'}\n")


@app.command()
def rehearse(
    stack: Annotated[
        str | None, typer.Argument(help="Stack name (e.g. fraud-dev) or stack file.")
    ] = None,
    image_ref: Annotated[
        str, typer.Option("--image", help="The locally built runtime image to run.")
    ] = "localhost/mlops-runtime:dev",
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave it up (for tests/infra); `--down` later.")
    ] = False,
    tear_down: Annotated[
        bool, typer.Option("--down", help="Tear down a rehearsal left up with --keep.")
    ] = False,
    loop: Annotated[
        bool,
        typer.Option(
            "--loop",
            help="Then play continuous training's loop with the stack's own jobs: normal and "
            "drifted traffic, the drift monitor, `train --if-due`, the canary, the monitor "
            "promoting it (the short windows of `mlops demo --loop`).",
        ),
    ] = False,
) -> None:
    """Play STACK's planned workloads on this machine with podman (moto for AWS, the local
    PostgreSQL for RDS): MLflow server, one run of each job, the endpoints; report, tear down."""
    from tooling import rehearse as rehearsal

    if tear_down:
        if not rehearsal.down(log=err.print):
            err.print("no rehearsal is up")
        return
    if stack is None:
        err.print("[red]✗[/] name a stack (e.g. `mlops rehearse fraud-dev`) or pass --down")
        raise typer.Exit(2)
    rehearsal.down(log=err.print)  # a rehearsal left up before would hold the ports
    file = stack_file(stack)
    try:
        with err.status(f"planning {file.name} under the mock engine"):
            result = plan_stack(file)
        state = rehearsal.Rehearsal(result, image_ref, log=err.print, loop=loop).run()
    except ConfigError as error:
        _report(error)
        raise typer.Exit(1) from None
    except (rehearsal.RehearsalError, OSError) as error:
        err.print(f"[red]✗[/] {escape(str(error))}", highlight=False)
        if not keep:
            rehearsal.down(log=err.print)
        else:
            err.print("left up for a look (--keep); `mlops rehearse --down` when done")
        raise typer.Exit(1) from None
    table = Table("role", "pod", "state", "detail", title=f"Rehearsal of {state.stack}")
    for row in rehearsal.iter_rows(state):
        table.add_row(*map(escape, row))
    out.print(table)
    out.print(f"AWS: moto at {state.aws_endpoint}; registry database: {state.database_uri}")
    if state.loop is not None:
        out.print(
            f"continuous training: {state.loop['model']} v{state.loop['version']} retrained on "
            f"drift and promoted over v{state.loop['previous']} in {state.loop['seconds']:.0f}s",
            highlight=False,
        )
    if keep:
        out.print("left up: `pytest tests/infra`, then `mlops rehearse --down`")
    else:
        rehearsal.down(log=err.print)


@app.command()
def demo(
    home: Annotated[
        Path, typer.Option(help="Folder the demo works in (registry, features, logs, reports).")
    ] = Path(".mlops/demo"),
    loop: Annotated[
        bool,
        typer.Option(
            "--loop",
            help="Then close the loop of continuous training: drift in M of N monitor windows "
            "-> train --if-due retrains on the new data -> canary -> automatic promotion.",
        ),
    ] = False,
) -> None:
    """Run the platform end to end on this machine: data, features, training, registry, a real
    server, normal then drifted traffic, drift monitoring. Safe to re-run."""
    from tooling.demo import DemoError, run_demo

    try:
        result = run_demo(home, console=out, loop=loop)
    except DemoError as error:
        err.print(f"[red]✗[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(1) from None
    if not result.drifted_features:
        err.print("[yellow]![/] the drifted traffic was not flagged as drift")
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
