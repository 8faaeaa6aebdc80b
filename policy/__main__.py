"""The CrossGuard policy pack: `pulumi preview --policy-pack policy`.

Every rule is MANDATORY but the budget warning (ADVISORY); the rules themselves live in
`policy.rules` (pure functions, also run offline by `mlops policy STACK`), the adapters in
`policy.crossguard`.
"""

import sys
from pathlib import Path

# The analyzer runs this file from the pack folder; the `policy` package lives one level up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policy.crossguard import PACK_NAME, policies

PolicyPack(
    name=PACK_NAME,
    policies=policies(),
    enforcement_level=EnforcementLevel.MANDATORY,
    description="MLOps platform security: encryption, private data, least-privilege IAM, "
    "hardened workloads, tags, prod safety.",
)
