"""Subnet layout arithmetic: plain functions, no mocks."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.platform import layout


def test_private_subnets_come_first_and_public_ones_follow() -> None:
    zones = layout.zone_names("eu-west-1", 3)
    planned = layout.plan_subnets("10.30.0.0/16", zones, private_prefix=19, public_prefix=24)

    assert zones == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    assert [(s.zone, s.cidr, s.public) for s in planned] == [
        ("eu-west-1a", "10.30.0.0/19", False),
        ("eu-west-1b", "10.30.32.0/19", False),
        ("eu-west-1c", "10.30.64.0/19", False),
        ("eu-west-1a", "10.30.96.0/24", True),
        ("eu-west-1b", "10.30.97.0/24", True),
        ("eu-west-1c", "10.30.98.0/24", True),
    ]
    assert planned[0].suffix == "a"
    assert planned[0].usable_addresses == 8192 - 5


@given(
    vpc_prefix=st.integers(16, 22),
    zones=st.integers(1, 6),
    private=st.integers(16, 26),
    smaller=st.integers(0, 6),
)
def test_a_layout_never_overlaps_and_stays_inside_the_vpc(
    vpc_prefix: int, zones: int, private: int, smaller: int
) -> None:
    # Public subnets are never larger than private ones: then alignment wastes no address.
    public = min(private + smaller, 28)
    vpc = f"10.0.0.0/{vpc_prefix}"
    try:
        planned = layout.plan_subnets(
            vpc, layout.zone_names("us-east-1", zones), private_prefix=private, public_prefix=public
        )
    except layout.LayoutError:
        # Refused only when the subnets really need more addresses than the VPC has.
        assert zones * (2 ** (32 - private) + 2 ** (32 - public)) > 2 ** (32 - vpc_prefix) or (
            private < vpc_prefix or public < vpc_prefix
        )
        return
    cidrs = [s.cidr for s in planned]
    assert not list(layout.overlaps(cidrs))
    assert all(layout.within(c, vpc) for c in cidrs)
    assert all(ipaddress.ip_network(c).prefixlen in (private, public) for c in cidrs)


def test_a_layout_that_does_not_fit_says_so() -> None:
    with pytest.raises(
        layout.LayoutError,
        match=r"3 private /19 and 3 public /24 subnets do not fit in 10.0.0.0/18",
    ):
        layout.plan_subnets("10.0.0.0/18", ["a", "b", "c"], private_prefix=19, public_prefix=24)


def test_overlaps_names_every_pair() -> None:
    assert list(
        layout.overlaps(["10.0.0.0/16", "10.0.1.0/24", "10.1.0.0/24", "10.0.1.128/25"])
    ) == [
        (0, 1),
        (0, 3),
        (1, 3),
    ]
