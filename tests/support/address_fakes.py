"""Stand-ins for the directories an address fix talks to, shared by the fix-flow unit tests
(tests/unit/test_address_fixes.py over AD, test_address_cloud_fixes.py over Exchange Online). The same flows
against the lab's real servers: tests/integration/test_address_scan.py and test_address_cloud.py."""

from __future__ import annotations

from contextlib import contextmanager

from portal.connectors.ad import NotFound


@contextmanager
def yielding(value):
    """A connector context manager that hands out ``value``, as portal.connectors.registry's do."""
    yield value


def patch_connector(monkeypatch, name: str, fake, *, where: tuple[str, ...] = ("views", "jobs")) -> None:
    """Make ``diagnostics_app.addresses.<where>.<name>()`` (active_directory, exchange_online, entra_connect,
    entra_graph) yield ``fake``."""
    for module in where:
        monkeypatch.setattr(f"diagnostics_app.addresses.{module}.{name}", lambda: yielding(fake))


class FakeObject:
    def __init__(self, attributes):
        self.attributes = attributes

    def get(self, name):
        return list(self.attributes.get(name, []))


class FakeDirectory:
    """Active Directory: objects by DN (attribute -> list of values); writes recorded. ``reads_allowed=False``
    makes any read fail the test (a fix that must never touch AD)."""

    def __init__(self, objects=None, *, reads_allowed: bool = True):
        self.objects = objects if objects is not None else {}
        self.reads_allowed = reads_allowed
        self.writes = []

    def read(self, dn, *, attributes=None):
        if not self.reads_allowed:
            raise AssertionError("this fix must not read AD")
        if dn not in self.objects:
            raise NotFound(f"{dn} does not exist")
        return FakeObject({a: self.objects[dn].get(a, []) for a in attributes or self.objects[dn]})

    def modify(self, dn, *, replace=None, add=None, delete=None):
        self.writes.append((dn, replace))
        for attribute, values in (replace or {}).items():
            self.objects[dn][attribute] = list(values or [])


class FakeSync:
    """The Entra Connect server: each delta cycle is recorded and 'exports' ``exported`` into ``cloud``."""

    def __init__(self, cloud=None, exported=None):
        self.cloud, self.exported, self.cycles = cloud, exported or {}, []

    def wait_until_idle(self, *, timeout=600.0, poll=2.0):
        return True

    def start_sync_cycle(self, *, policy="Delta"):
        self.cycles.append(policy)
        if self.cloud is not None:
            self.cloud.update(self.exported)
        return type("Start", (), {"result": "Success"})()
