"""What `mlops cost` adds to the offline plan it prices, for every example stack.

infracost, the tool a user would otherwise pick, prices Terraform plans only; the baseline is
therefore the plan alone (`mlops plan`), and the ratio is (plan + pricing) / plan.

    .venv/bin/python benchmarks/cost.py            # writes the table to stdout (markdown)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tooling.cost import plan_cost  # noqa: E402
from tooling.plan import plan_stack  # noqa: E402
from tooling.project import Workspace  # noqa: E402

WORKSPACE = Workspace(ROOT)
STACKS = ROOT / "stacks"

REPEAT = 5


def best(fn: Callable[[], object], repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    rows = [
        "| stack | resources | priced lines | plan (s) | cost of the plan (ms) | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    plan_cost(plan_stack("fraud-dev", workspace=WORKSPACE))  # warm the imports and the price table
    for file in sorted(STACKS.glob("Pulumi.*.yaml")):
        plan = plan_stack(file, workspace=WORKSPACE)
        lines = len(plan_cost(plan).estimate.lines)
        planned = best(lambda file=file: plan_stack(file, workspace=WORKSPACE))
        # Timed apart from the plan: on a shared machine the difference of two noisy plan
        # timings says less than the pricing's own (much shorter, steadier) time.
        priced = best(lambda plan=plan: plan_cost(plan), repeat=20)
        rows.append(
            f"| {plan.stack} | {len(plan.resources)} | {lines} | {planned:.2f} | "
            f"{priced * 1000:.1f} | {(planned + priced) / planned:.3f} |"
        )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
