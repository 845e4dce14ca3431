"""Addresses and ports for the labs a test module starts for itself (its own Samba, its own cloud service).

They derive from the run's own lab (LAB_AD_HOST, LAB_CLOUD_PORT; portal/pytest_defaults.py gives every
xdist worker its own), so two workers, or two checkouts with different base addresses and ports, never
start a lab on the same address or port. A DIROPS_TEST_*_HOST / _PORT variable still overrides each.
"""

from __future__ import annotations

import os

# One slot per lab a module starts; a host slot is the second octet, a port slot a step of 10 (a module
# may use the next few ports: PORT + 1 for a second service).
AD_CONNECTOR, LAB_AD, LAB_AD_THROWAWAY, LAB_AD_SQUATTER, LAB_SEED, LAB_SYNC = range(1, 7)
LAB_CLOUD, CLOUD_CONNECTORS, LAB_ONPREM, MFA_SNAPSHOT, STACK_REDIS = range(1, 6)


def own_host(slot: int) -> str:
    """127.<slot>.b.c for the run's lab on 127.0.b.c."""
    _, _, b, c = os.environ["LAB_AD_HOST"].split(".")
    return f"127.{slot}.{b}.{c}"


def own_port(slot: int) -> int:
    """The run's lab cloud port + 10 × slot."""
    return int(os.environ["LAB_CLOUD_PORT"]) + 10 * slot
