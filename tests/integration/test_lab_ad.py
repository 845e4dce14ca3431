"""Lifecycle of the lab's Samba AD DC and its Exchange schema (portal.lab.samba, exchange_schema).

Runs a throw-away lab in a temporary directory on an address of its own (tests/support/labs.py;
DIROPS_TEST_LAB_HOST overrides), so it never touches the development lab in var/lab/ad nor the connector tests' lab.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.lab import exchange_schema, samba
from tests.support import labs

pytestmark = pytest.mark.integration

HOST = os.environ.get("DIROPS_TEST_LAB_HOST") or labs.own_host(labs.LAB_AD)
PASSWORD = "Lab-" + secrets.token_urlsafe(16) + "-7b"


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("lab") / "ad"
    yield base
    samba.stop(base_dir=base)


def _schema_missing(status: samba.LabStatus) -> list[str]:
    with exchange_schema.admin_connection(host=status.host, bind_dn=status.admin_dn or "", password=PASSWORD) as c:
        return exchange_schema.schema_missing(c)


def _files(base: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in base.rglob("*") if path.is_file()}


def _must_not_run(what: str):
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{what} ran again")

    return refuse


def test_provision_is_idempotent_and_keeps_everything_under_base_dir(
    lab_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    samba.stop(base_dir=lab_dir)  # an earlier test (any order) may have started it: provisioning never does
    started = time.monotonic()
    status = samba.provision(base_dir=lab_dir, admin_password=PASSWORD, host=HOST)
    print(f"\nprovision {time.monotonic() - started:.1f} s")
    files = _files(lab_dir)
    # The second call returns early: samba-tool does not run, no file under base_dir is written.
    monkeypatch.setattr(samba, "_run_samba_tool_provision", _must_not_run("samba-tool domain provision"))
    again = samba.provision(base_dir=lab_dir, admin_password=PASSWORD, host=HOST)
    assert _files(lab_dir) == files
    assert status.provisioned and not status.running and again == status
    assert status.base_dn == "DC=lab,DC=example" and status.admin_dn == "CN=Administrator,CN=Users,DC=lab,DC=example"
    assert (status.host, status.ldap_port, status.ldaps_port, status.gc_port, status.gcs_port) == (
        HOST, 389, 636, 3268, 3269)
    conf = (lab_dir / "etc" / "smb.conf").read_text()
    for line in (
        "server services = ldap", f"interfaces = {HOST}/8", f"pid directory = {lab_dir.resolve() / 'run'}",
        "ldap server require strong auth = no", "dsdb:schema update allowed = true", "ldb:nosync = true",
        f"log file = {lab_dir.resolve() / 'log' / 'samba.log'}",
    ):
        assert line in conf, line
    assert conf.count("server services") == 1 and "/var/log/samba" not in conf and "/run/samba" not in conf
    for path in (lab_dir / "etc" / "smb.conf", lab_dir / "lab.json"):
        assert PASSWORD not in path.read_text()
    with pytest.raises(samba.LabError, match="realm"):
        samba.provision(base_dir=lab_dir, admin_password=PASSWORD, realm="OTHER.EXAMPLE", host=HOST)


def test_start_status_stop(lab_dir: Path) -> None:
    samba.provision(base_dir=lab_dir, admin_password=PASSWORD, host=HOST)
    started = time.monotonic()
    status = samba.start(base_dir=lab_dir)
    print(f"\nstart {time.monotonic() - started:.2f} s")
    assert status.running and status.pid == int((lab_dir / "run" / "samba.pid").read_text())
    assert samba.start(base_dir=lab_dir).pid == status.pid  # idempotent
    assert samba._ldap_answers(HOST, 389, 2.0)
    assert status.ca_file is not None and status.ca_file.exists()
    pid = status.pid
    stopped = samba.stop(base_dir=lab_dir)
    assert not stopped.running and stopped.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not samba._ldap_answers(HOST, 389, 1.0)
    assert not samba.stop(base_dir=lab_dir).running  # idempotent


def test_stop_signals_only_the_labs_own_samba(lab_dir: Path) -> None:
    """A stale pid file naming some other process must not get that process killed."""
    samba.stop(base_dir=lab_dir)
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        (lab_dir / "run").mkdir(parents=True, exist_ok=True)  # in any order: the lab may not be provisioned yet
        (lab_dir / "run" / "samba.pid").write_text(f"{bystander.pid}\n")
        assert not samba.status(base_dir=lab_dir).running
        samba.stop(base_dir=lab_dir)
        assert bystander.poll() is None, "stop() signalled a process that is not the lab's samba"
    finally:
        bystander.send_signal(signal.SIGKILL)
        bystander.wait()


def test_start_refuses_an_address_already_served(lab_dir: Path) -> None:
    samba.stop(base_dir=lab_dir)
    squatter = labs.own_host(labs.LAB_AD_SQUATTER)  # an address no other lab of the test suite uses
    import socket

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((squatter, 389))
    listener.listen()
    try:
        samba.provision(base_dir=lab_dir, admin_password=PASSWORD, host=squatter)  # re-renders smb.conf only
        with pytest.raises(samba.LabError, match="already served"):
            samba.start(base_dir=lab_dir)
    finally:
        listener.close()
        samba.provision(base_dir=lab_dir, admin_password=PASSWORD, host=HOST)
    assert f"interfaces = {HOST}/8" in (lab_dir / "etc" / "smb.conf").read_text()


def test_ensure_up_adds_the_exchange_schema_once(lab_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    samba.stop(base_dir=lab_dir)
    started = time.monotonic()
    status = samba.ensure_up(base_dir=lab_dir, admin_password=PASSWORD, host=HOST)
    print(f"\nensure_up (start + schema) {time.monotonic() - started:.1f} s")
    assert status.running and _schema_missing(status) == []
    # Again, everything is in place: no provision, no restart (same pid), no schema written.
    monkeypatch.setattr(samba, "_run_samba_tool_provision", _must_not_run("samba-tool domain provision"))
    monkeypatch.setattr(exchange_schema, "apply_schema", _must_not_run("the Exchange schema update"))
    again = samba.ensure_up(base_dir=lab_dir, admin_password=PASSWORD, host=HOST)
    assert again.pid == status.pid


def test_schema_applied_twice_is_a_no_op(lab_dir: Path) -> None:
    status = samba.ensure_up(base_dir=lab_dir, admin_password=PASSWORD, host=HOST)
    with exchange_schema.admin_connection(host=status.host, bind_dn=status.admin_dn or "", password=PASSWORD) as c:
        sdn = exchange_schema.schema_dn(c)
        c.search(sdn, "(objectClass=*)", search_scope="LEVEL", attributes=["uSNChanged"], paged_size=5000)
        before = {e["dn"]: e["attributes"]["uSNChanged"] for e in c.response if e.get("type") == "searchResEntry"}
        report = exchange_schema.apply_schema(c)
        assert not report.changed, report
        report = exchange_schema.apply_schema(c)
        assert not report.changed
        c.search(sdn, "(objectClass=*)", search_scope="LEVEL", attributes=["uSNChanged"], paged_size=5000)
        after = {e["dn"]: e["attributes"]["uSNChanged"] for e in c.response if e.get("type") == "searchResEntry"}
        assert after == before  # nothing in the schema partition was written
        assert exchange_schema.schema_missing(c) == []
        # The identifiers are the real ones.
        for name, oid, link in (
            ("mailNickname", "1.2.840.113556.1.2.447", None), ("targetAddress", "1.2.840.113556.1.2.352", None),
            ("authOrig", "1.2.840.113556.1.2.129", 110), ("authOrigBL", "1.2.840.113556.1.2.290", 111),
            ("altRecipient", "1.2.840.113556.1.2.126", 12), ("publicDelegatesBL", "1.2.840.113556.1.2.295", 15),
            ("msExchRecipientTypeDetails", "1.2.840.113556.1.4.7000.102.50855", None),
            ("msDS-ExternalDirectoryObjectId", "1.2.840.113556.1.4.2310", None),
        ):
            c.search(sdn, f"(lDAPDisplayName={name})", attributes=["attributeID", "linkID", "attributeSyntax"])
            attrs = c.response[0]["attributes"]
            assert attrs["attributeID"] in (oid, [oid])
            if link is not None:
                assert int(attrs["linkID"] if not isinstance(attrs["linkID"], list) else attrs["linkID"][0]) == link
        c.search(sdn, "(lDAPDisplayName=msExchCoManagedObjectsBL)", attributes=["linkID"])
        back = c.response[0]["attributes"]["linkID"]
        c.search(sdn, "(lDAPDisplayName=msExchCoManagedByLink)", attributes=["linkID"])
        forward = c.response[0]["attributes"]["linkID"]
        assert int(_one(back)) == int(_one(forward)) + 1  # allocated pair


def _one(value):
    return value[0] if isinstance(value, list) else value


def test_reset_returns_an_empty_lab_with_the_schema(lab_dir: Path) -> None:
    status = samba.ensure_up(base_dir=lab_dir, admin_password=PASSWORD, host=HOST)
    ou = f"OU=leftover,{status.base_dn}"
    with exchange_schema.admin_connection(host=status.host, bind_dn=status.admin_dn or "", password=PASSWORD) as c:
        assert c.add(ou, attributes={"objectClass": "organizationalUnit"}), c.result
    started = time.monotonic()
    fresh = samba.reset(base_dir=lab_dir, admin_password=PASSWORD, host=HOST)
    print(f"\nreset (stop, wipe, provision, start, schema) {time.monotonic() - started:.1f} s")
    assert fresh.running and fresh.pid != status.pid
    with exchange_schema.admin_connection(host=fresh.host, bind_dn=fresh.admin_dn or "", password=PASSWORD) as c:
        assert not c.search(ou, "(objectClass=*)", search_scope="BASE")
        assert c.result["result"] == 32
        assert exchange_schema.schema_missing(c) == []


def test_wipe_refuses_a_directory_the_lab_did_not_create(tmp_path: Path) -> None:
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    with pytest.raises(samba.LabError, match="refusing to wipe"):
        samba.provision(base_dir=tmp_path, admin_password=PASSWORD, host=labs.own_host(labs.LAB_AD_THROWAWAY))
    assert precious.read_text() == "keep me"


def test_provision_errors_never_show_the_password(tmp_path: Path) -> None:
    weak = "zq7" + secrets.token_hex(1)
    with pytest.raises(samba.LabError) as err:
        samba.provision(base_dir=tmp_path / "weak", admin_password=weak, host=labs.own_host(labs.LAB_AD_THROWAWAY))
    assert "password" in str(err.value).lower() and weak not in str(err.value)
    with pytest.raises(samba.LabError, match="loopback"):
        samba.provision(base_dir=tmp_path / "wide", admin_password=PASSWORD, host="0.0.0.0")
