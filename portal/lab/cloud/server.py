"""Lifecycle of the lab cloud service: its lab CA, its credentials, and its uvicorn process.

Everything lives under one directory chosen by the caller (the project passes ``var/lab/cloud``):

- ``ca.pem`` (the lab CA certificate clients trust), ``ca-key.pem`` (mode 600),
  ``server.pem`` / ``server-key.pem`` (mode 600): made with trustme, reused across starts, the
  server certificate reissued when it nears expiry;
- ``credentials.json`` (mode 600): tenant id, initial domain, client id and secret of the portal's
  app registration, user name and password of the PowerShell endpoints -- generated once, never
  printed, only a salted hash of each secret goes into the database;
- ``cloud.sqlite3``: the tenant's data (``store.py``);
- ``cloud.pid`` and ``cloud.log``.

The process is ``python -m portal.lab.cloud`` in a session of its own, so it outlives the caller
and never becomes its zombie. ``start`` returns once the service answers over HTTPS (checked
against the lab CA), or raises :class:`CloudLabError` with the tail of its log.

This module does not import Django; the management commands wrap it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from portal.lab.procs import port_open, wait_gone

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8444
DEFAULT_INITIAL_DOMAIN = "contoso.onmicrosoft.com"
POWERSHELL_USER = "syncadmin"

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "server.pem"
SERVER_KEY = "server-key.pem"
CREDENTIALS = "credentials.json"
PID_FILE = "cloud.pid"
LOG_FILE = "cloud.log"
# The names the server certificate carries: clients reach the lab by either loopback name.
CERT_NAMES = ("127.0.0.1", "localhost", "::1")
_RENEW_BEFORE = dt.timedelta(days=30)
_REPO_ROOT = Path(__file__).resolve().parents[3]


class CloudLabError(RuntimeError):
    """The lab cloud could not be started or stopped; the message says why (never a secret)."""


@dataclass(frozen=True)
class LabCredentials:
    """What the portal needs to reach the lab cloud. Secrets are kept out of ``repr``."""

    tenant_id: str
    initial_domain: str
    client_id: str
    client_secret: str = field(repr=False)
    powershell_username: str = POWERSHELL_USER
    powershell_password: str = field(default="", repr=False)


@dataclass(frozen=True)
class CloudStatus:
    data_dir: Path
    running: bool
    pid: int | None
    host: str
    port: int
    tenant_id: str | None
    ca_file: Path | None
    log_file: Path

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def authority(self) -> str:
        """The msal authority (``https://host:port/<tenant>``)."""
        return f"{self.base_url}/{self.tenant_id}"

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    @property
    def graph_beta_url(self) -> str:
        return f"{self.base_url}/beta"

    @property
    def exchange_invoke_url(self) -> str:
        return f"{self.base_url}/adminapi/beta/{self.tenant_id}/InvokeCommand"

    @property
    def entra_connect_url(self) -> str:
        return f"{self.base_url}/powershell/entra-connect"

    @property
    def exchange_onprem_url(self) -> str:
        return f"{self.base_url}/powershell/exchange-onprem"


# --------------------------------------------------------------------------------------------
# CA and certificates


def ensure_ca(*, data_dir: Path) -> Path:
    """Make (or reuse) the lab CA and the server certificate for 127.0.0.1/localhost/::1.

    Returns the CA certificate's path, the file clients pass as ``verify=``.
    """
    import trustme

    base = Path(data_dir).resolve()
    base.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = base / CA_CERT, base / CA_KEY
    if ca_cert.exists() and ca_key.exists():
        ca = trustme.CA.from_pem(ca_cert.read_bytes(), ca_key.read_bytes())
    else:
        ca = trustme.CA(organization_name="DirOps rehearsal lab", organization_unit_name="lab cloud")
        _write_private(ca_key, ca.private_key_pem.bytes())
        ca.cert_pem.write_to_path(str(ca_cert))
    server_cert, server_key = base / SERVER_CERT, base / SERVER_KEY
    if not (server_cert.exists() and server_key.exists()) or _needs_renewal(server_cert):
        now = dt.datetime.now(dt.UTC)
        leaf = ca.issue_cert(*CERT_NAMES, common_name="lab cloud", not_before=now - dt.timedelta(minutes=5),
                             not_after=now + dt.timedelta(days=825))
        _write_private(server_key, leaf.private_key_pem.bytes())
        server_cert.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    return ca_cert


def _needs_renewal(cert_path: Path) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return True
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    present = {str(n) for n in names.get_values_for_type(x509.DNSName)} | {
        str(n) for n in names.get_values_for_type(x509.IPAddress)}
    wanted = {str(ipaddress.ip_address(n)) if _is_ip(n) else n for n in CERT_NAMES}
    return not wanted <= present or cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < _RENEW_BEFORE


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only, from the first byte on."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.replace(path)


# --------------------------------------------------------------------------------------------
# credentials


def lab_credentials(
    *, data_dir: Path, tenant_id: str | None = None, initial_domain: str = DEFAULT_INITIAL_DOMAIN
) -> LabCredentials:
    """The lab's tenant and app credentials, generated on first use (mode 600) and registered in
    the lab database (as salted hashes). A lab made for another tenant id is refused.
    """
    from .store import CloudStore

    base = Path(data_dir).resolve()
    base.mkdir(parents=True, exist_ok=True)
    path = base / CREDENTIALS
    if path.exists():
        data = json.loads(path.read_text())
        if tenant_id and data["tenant_id"].lower() != tenant_id.lower():
            raise CloudLabError(
                f"{base} holds the lab cloud of tenant {data['tenant_id']}, not {tenant_id}; reset it to change tenants"
            )
    else:
        data = {
            "tenant_id": (tenant_id or str(uuid.uuid4())).lower(),
            "initial_domain": initial_domain.lower(),
            "client_id": str(uuid.uuid4()),
            "client_secret": f"lab~{secrets.token_urlsafe(30)}",
            "powershell_username": POWERSHELL_USER,
            "powershell_password": secrets.token_urlsafe(24),
        }
        _write_private(path, json.dumps(data, indent=2).encode())
    creds = LabCredentials(**data)
    store = CloudStore.open(data_dir=base)
    try:
        store.set_tenant(tenant_id=creds.tenant_id, initial_domain=creds.initial_domain)
        # Re-register only when needed: each registration draws a new salt and writes the database.
        if not store.verify_client_secret(client_id=creds.client_id, client_secret=creds.client_secret):
            store.register_app(client_id=creds.client_id, client_secret=creds.client_secret)
        ps_id = f"ps:{creds.powershell_username}"
        if not store.verify_client_secret(client_id=ps_id, client_secret=creds.powershell_password):
            store.register_app(client_id=ps_id, client_secret=creds.powershell_password,
                               display_name="PowerShell endpoints (lab)", roles=())
    finally:
        store.close()
    return creds


# --------------------------------------------------------------------------------------------
# running


def start(
    *,
    data_dir: Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    tenant_id: str | None = None,
    initial_domain: str = DEFAULT_INITIAL_DOMAIN,
    sync_runner: str | None = None,
    onprem_runner: str | None = None,
    timeout: float = 30.0,
) -> CloudStatus:
    """Start the service and return once it answers over HTTPS.

    ``sync_runner`` / ``onprem_runner`` name callables as ``"package.module:function"`` (imported by
    the service process). Idempotent: a service already running from ``data_dir`` on the same
    address is returned as it is; on another address it is refused (stop it first).
    """
    base = Path(data_dir).resolve()
    _check_host(host)
    current = status(data_dir=base)
    if current.running:
        if current.host == host and current.port == port:
            return current
        raise CloudLabError(f"the lab cloud of {base} runs on {current.host}:{current.port}; stop it before moving it "
                            f"to {host}:{port}")
    if port_open(host, port, 0.3):
        raise CloudLabError(f"{host}:{port} is already served by another process; choose another port")
    ca_file = ensure_ca(data_dir=base)
    creds = lab_credentials(data_dir=base, tenant_id=tenant_id, initial_domain=initial_domain)
    log_file = base / LOG_FILE
    log_offset = log_file.stat().st_size if log_file.exists() else 0
    command = [
        sys.executable, "-m", "portal.lab.cloud",
        "--data-dir", str(base), "--host", host, "--port", str(port),
        "--tenant-id", creds.tenant_id, "--initial-domain", creds.initial_domain,
        "--certfile", str(base / SERVER_CERT), "--keyfile", str(base / SERVER_KEY),
    ]
    if sync_runner:
        command += ["--sync-runner", sync_runner]
    if onprem_runner:
        command += ["--onprem-runner", onprem_runner]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(command, cwd=_REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    _write_pid(base, {"pid": proc.pid, "host": host, "port": port, "tenant_id": creds.tenant_id,
                      "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
    context = ssl.create_default_context(cafile=str(ca_file))
    deadline = time.monotonic() + timeout
    url = f"{status(data_dir=base).base_url}/lab/health"
    while True:
        if proc.poll() is not None:
            (base / PID_FILE).unlink(missing_ok=True)
            raise CloudLabError(f"the lab cloud exited during start-up (status {proc.returncode})\n"
                                f"{_log_tail(log_file, log_offset)}")
        if _answers(url, context):
            return status(data_dir=base)
        if time.monotonic() > deadline:
            _terminate(proc.pid, 5.0)
            (base / PID_FILE).unlink(missing_ok=True)
            raise CloudLabError(f"the lab cloud did not answer on {host}:{port} within {timeout:.0f} s\n"
                                f"{_log_tail(log_file, log_offset)}")
        time.sleep(0.1)


def stop(*, data_dir: Path, timeout: float = 10.0) -> CloudStatus:
    """SIGTERM to exactly this lab's process (SIGKILL after ``timeout``). Idempotent."""
    base = Path(data_dir).resolve()
    pid = _running_pid(base)
    if pid is not None and not _terminate(pid, timeout):
        raise CloudLabError(f"the lab cloud (pid {pid}) survived SIGKILL")
    (base / PID_FILE).unlink(missing_ok=True)
    return status(data_dir=base)


def status(*, data_dir: Path) -> CloudStatus:
    base = Path(data_dir).resolve()
    meta = _read_pid(base) or {}
    pid = _running_pid(base)
    creds_tenant = None
    with contextlib.suppress(OSError, ValueError, KeyError):
        creds_tenant = json.loads((base / CREDENTIALS).read_text())["tenant_id"]
    return CloudStatus(
        data_dir=base,
        running=pid is not None,
        pid=pid,
        host=meta.get("host", DEFAULT_HOST),
        port=int(meta.get("port", DEFAULT_PORT)),
        tenant_id=meta.get("tenant_id") or creds_tenant,
        ca_file=(base / CA_CERT) if (base / CA_CERT).exists() else None,
        log_file=base / LOG_FILE,
    )


def ensure_up(
    *,
    data_dir: Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    tenant_id: str | None = None,
    sync_runner: str | None = None,
    onprem_runner: str | None = None,
) -> CloudStatus:
    """Start unless running on that address; restart when it runs elsewhere."""
    current = status(data_dir=data_dir)
    if current.running and (current.host != host or current.port != port):
        stop(data_dir=data_dir)
    return start(data_dir=data_dir, host=host, port=port, tenant_id=tenant_id, sync_runner=sync_runner,
                 onprem_runner=onprem_runner)


# --------------------------------------------------------------------------------------------
# process helpers


def _check_host(host: str) -> None:
    if host == "localhost":
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise CloudLabError(f"host must be a loopback address such as 127.0.0.1, not {host!r}") from exc
    if not address.is_loopback:
        raise CloudLabError(f"the lab cloud only listens on loopback, not on {host!r}")


def _read_pid(base: Path) -> dict | None:
    try:
        data = json.loads((base / PID_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_pid(base: Path, meta: dict) -> None:
    tmp = base / (PID_FILE + ".tmp")
    tmp.write_text(json.dumps(meta))
    tmp.replace(base / PID_FILE)


def _running_pid(base: Path) -> int | None:
    """The pid when it is alive and really this lab's service (its command line names the module
    and this data directory); a stale pid file, or a pid reused by another process, gives None."""
    meta = _read_pid(base)
    if not meta:
        return None
    pid = meta.get("pid")
    if not isinstance(pid, int) or pid <= 1:
        return None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return None
    if state in {"Z", "X"}:
        return None
    if b"portal.lab.cloud" not in args or str(base).encode() not in args:
        return None
    return pid


def _terminate(pid: int, timeout: float) -> bool:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if wait_gone(pid, timeout):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return wait_gone(pid, 5.0)


def _answers(url: str, context: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310 - lab URL
            return response.status == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def _log_tail(log_file: Path, offset: int = 0, lines: int = 30) -> str:
    try:
        with log_file.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(offset if offset <= size else 0)
            text = handle.read().decode(errors="replace")
    except OSError:
        return f"(no log at {log_file})"
    tail = "\n".join(text.strip().splitlines()[-lines:])
    return f"last lines of {log_file}:\n{tail}"
