"""TLS private keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.rules.properties import UNKNOWN, known
from policy.rules.registry import Context, resource_rule

MIN_RSA_BITS = 2048


@resource_rule(
    "tls-key-strength",
    f"Private keys are ECDSA or RSA of at least {MIN_RSA_BITS} bits.",
    "tls:index/privateKey:PrivateKey",
)
def tls_key_strength(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    algorithm = props.get("algorithm")
    bits = props.get("rsaBits") or MIN_RSA_BITS
    if algorithm == "RSA" and known(bits) and float(bits) < MIN_RSA_BITS:
        return [f"rsaBits is {bits}: use {MIN_RSA_BITS} or more, or ECDSA P256"]
    if algorithm not in ("RSA", "ECDSA", "ED25519", UNKNOWN):
        return [f"algorithm {algorithm!r}: use ECDSA (P256) or RSA {MIN_RSA_BITS}+"]
    return []
