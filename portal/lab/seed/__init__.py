"""The scenario seeder, directory side: builds the lab organisation in AD through the connector.

:func:`seed` creates, under ``OU=Contoso,<base>`` (``portal/lab/layout.py``), an organisation of
``users`` user objects holding every case of the field notes (``docs/seed-field-notes.txt``), with
the attributes Exchange on-premises and Entra Connect would have written. The :class:`Manifest` it
returns names, per scenario, the objects embodying it and the facts that make them that case, so
tests and features find "the list with a nesting cycle" without searching by name.

Deterministic: everything (names, addresses, object ids, memberships) comes from
``random.Random`` streams seeded by ``seed``; the same ``(base_dn, users, seed)`` always gives the
same objects and the same manifest. Only what the directory assigns itself (objectGUID, objectSid,
USNs, times) differs between two labs.

Idempotent: a finished seed leaves a marker (JSON in the ``description`` of ``OU=Contoso``) with
the parameters, the seeder version and the manifest's digest. Seeding again with the same
parameters reads the marker, recomputes the manifest (a pure function of the parameters) and
returns it without writing. Other parameters, an older version or an unfinished seed are refused
unless ``reset=True``, which deletes ``OU=Contoso`` with its subtree first.

Cost: objects are created with the connector's pipelined ``add_many`` (one pipeline per dependency
level: users and contacts before the lists naming them, child lists before their parents) and the
5,200-member list is filled with batched ``add_values``. Measured against the lab's Samba 4.17
(mdb, nosync, two vCPUs): the default seed (5,320 objects, most of them the big list's filler
contacts) in about 5 s; ``users=100000`` (107,141 objects) in 29 minutes, because Samba's cost per
added user grows with the number of users already there (about 330 users/s at the start, 40/s
near 100,000), the client being idle most of the time. ``reset=True`` deletes object by object
(about 20 s for the default seed); for a large seed a fresh lab (``samba.reset``) is faster.

No Django here: callers (a management command, the tests) pass a connector.

The package: ``values`` (what Exchange and AD would write), ``manifest``, ``plan`` (the builder; its cases in
``idfix``, ``groups`` and ``writeback``, its names in ``common``, its scenario texts in ``descriptions``) and
``writing`` (the seed itself and its marker).
"""

from .common import LONG_LIST_NAME
from .manifest import Manifest, Scenario, ScenarioObject
from .plan import Plan, build_plan
from .values import (
    BIG_LIST_MEMBERS,
    CERTIFICATE_USER_IDS_ATTRIBUTE,
    MAX_USERS,
    MIN_USERS,
    SEED_VERSION,
    SeedError,
)
from .writing import SeedMarker, manifest_for, read_marker, seed

__all__ = [
    "BIG_LIST_MEMBERS", "CERTIFICATE_USER_IDS_ATTRIBUTE", "LONG_LIST_NAME", "MAX_USERS", "MIN_USERS", "SEED_VERSION",
    "Manifest", "Plan", "Scenario", "ScenarioObject", "SeedError", "SeedMarker", "build_plan", "manifest_for",
    "read_marker", "seed",
]
