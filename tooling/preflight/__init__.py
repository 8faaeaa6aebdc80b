"""The preflight: what AWS, the Kubernetes API server or the engine would refuse in a plan.

`mlops validate` checks a stack file; the preflight checks what the program made of it, every
planned resource's properties, so a mistake in component code is caught as well as one in a
config. `tooling.plan.plan_stack` runs it after planning, so `mlops plan`, `policy`, `cost`
and `diff` stop on it and report it like a config problem: where (resource and property), the
value, what is allowed.

One module per authority: `aws` (botocore's models and the AWS table, components/aws_values),
`documents` (the rules IAM, KMS and S3 apply to policy documents and lifecycle rules on write),
`kubernetes` (the API server's validation and admission rules the OpenAPI schema does not
encode).
"""

from __future__ import annotations

from collections.abc import Sequence

from tooling.preflight.aws import aws_findings
from tooling.preflight.base import Finding, Planned
from tooling.preflight.documents import document_findings
from tooling.preflight.kubernetes import admission_findings, kubernetes_findings

__all__ = ["Finding", "Planned", "check"]


def check(resources: Sequence[Planned]) -> list[Finding]:
    """Every finding of every check, over the resources the update would create."""
    created = [r for r in resources if r.custom and not r.read]
    return [
        *aws_findings(created),
        *document_findings(created),
        *kubernetes_findings(created),
        *admission_findings(created),
    ]
