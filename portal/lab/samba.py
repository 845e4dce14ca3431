"""Lifecycle of the rehearsal lab's Active Directory: a Samba AD DC on loopback, LDAP only.

Everything the DC writes lives under one directory chosen by the caller (the project passes
``var/lab/ad``): configuration, databases, TLS keys, pid file, logs. Nothing is written to
``/etc/samba``, ``/var/lib/samba`` or ``/run/samba``, so several labs can coexist on one machine.

Ports: Samba 4.17 has no setting for its LDAP ports; they are fixed at 389 (LDAP), 636 (LDAPS),
3268 (global catalog) and 3269 (global catalog over TLS). What *can* be chosen is the loopback
address it binds: Linux routes the whole of 127.0.0.0/8 to ``lo``, and Samba binds exactly the
address given in ``interfaces = <ip>/8``. Each lab therefore gets its own address (``host``;
default 127.0.0.1, the test suite uses 127.0.0.3) and never collides with another lab, or with any
other LDAP server, that listens on a different loopback address.

Secrets: the Administrator password comes from the caller, reaches ``samba-tool`` through a pipe
(never the command line, which other local users can read in /proc), and is never logged or put
into an exception message.

This module does not import Django; the management commands wrap it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from portal.lab.procs import port_open

DEFAULT_HOST = "127.0.0.1"
DEFAULT_REALM = "LAB.EXAMPLE"
DEFAULT_DOMAIN = "LAB"

# Fixed by Samba (see module docstring); exported so that callers build their settings from them.
LDAP_PORT = 389
LDAPS_PORT = 636
GC_PORT = 3268
GCS_PORT = 3269

MARKER_NAME = "lab.json"
# Names a provisioned lab directory may contain; wiping refuses a directory holding anything else
# so that a mistyped base_dir never deletes unrelated data.
_OWN_NAMES = frozenset(
    {MARKER_NAME, "etc", "private", "state", "cache", "bind-dns", "run", "log"}
    | {"gencache.tdb", "names.tdb", "msg.lock", "msg.sock", "lock", MARKER_NAME + ".tmp"}
)
_LAYOUT_VERSION = 1


class LabError(RuntimeError):
    """The lab could not be provisioned, started or stopped; the message says why."""


@dataclass(frozen=True)
class LabStatus:
    base_dir: Path
    provisioned: bool
    running: bool
    pid: int | None
    host: str
    ldap_port: int
    ldaps_port: int
    gc_port: int
    gcs_port: int
    realm: str | None
    domain: str | None
    base_dn: str | None
    admin_dn: str | None
    ca_file: Path | None  # Samba's self-signed CA, generated at first start
    log_file: Path

    @property
    def ldap_url(self) -> str:
        return f"ldap://{self.host}:{self.ldap_port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.host}:{self.ldaps_port}"


@dataclass(frozen=True)
class _Layout:
    base: Path

    @property
    def marker(self) -> Path:
        return self.base / MARKER_NAME

    @property
    def conf(self) -> Path:
        return self.base / "etc" / "smb.conf"

    @property
    def generated_conf(self) -> Path:
        return self.base / "etc" / "smb.conf.provisioned"

    @property
    def sam(self) -> Path:
        return self.base / "private" / "sam.ldb"

    @property
    def run_dir(self) -> Path:
        return self.base / "run"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "samba.pid"

    @property
    def log_dir(self) -> Path:
        return self.base / "log"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "samba.log"

    @property
    def ca_file(self) -> Path:
        return self.base / "private" / "tls" / "ca.pem"


def base_dn_for_realm(realm: str) -> str:
    return ",".join(f"DC={part}" for part in realm.lower().split("."))


def admin_dn_for_realm(realm: str) -> str:
    return f"CN=Administrator,CN=Users,{base_dn_for_realm(realm)}"


# --------------------------------------------------------------------------------------------
# provisioning


def provision(
    *,
    base_dir: Path,
    admin_password: str,
    realm: str = DEFAULT_REALM,
    domain: str = DEFAULT_DOMAIN,
    host: str = DEFAULT_HOST,
    backend_store_size: str = "8Gb",
    timeout: float = 180.0,
) -> LabStatus:
    """Provision a DC under ``base_dir`` unless one with the same realm and domain is there.

    Idempotent: a second call returns at once. A directory left half-written by an interrupted
    provision (no marker file) is wiped and provisioned again. A lab provisioned with another
    realm or domain is refused: use :func:`reset`. Another ``host`` only rewrites smb.conf (the lab
    must be stopped). ``backend_store_size`` is the LMDB map size per partition, sparse on disk;
    8 GB leaves room for the 100k-user benchmark organisation.
    """
    layout = _Layout(Path(base_dir).resolve())
    _check_host(host)
    meta = _read_marker(layout)
    if meta is not None and layout.sam.exists() and layout.generated_conf.exists():
        if meta.get("realm", "").upper() != realm.upper() or meta.get("domain", "").upper() != domain.upper():
            raise LabError(
                f"{layout.base} holds a lab for realm {meta.get('realm')!r} / domain {meta.get('domain')!r}, "
                f"not {realm!r} / {domain!r}; reset it to change either"
            )
        if meta.get("host") != host:
            if _is_running(layout) is not None:
                raise LabError(
                    f"the lab under {layout.base} is running on {meta.get('host')}; stop it before moving it to {host}"
                )
            # Only smb.conf depends on the address: re-render it, the databases stay.
            meta["host"] = host
            _write_marker(layout, meta)
            _render_conf(layout, host)
        return status(base_dir=layout.base)
    if _is_running(layout) is not None:
        raise LabError(f"samba is running from {layout.base} but the lab is incomplete; stop it first")
    _wipe(layout)
    layout.base.mkdir(parents=True, exist_ok=True)
    _run_samba_tool_provision(
        layout,
        admin_password=admin_password,
        realm=realm,
        domain=domain,
        host=host,
        backend_store_size=backend_store_size,
        timeout=timeout,
    )
    shutil.copyfile(layout.conf, layout.generated_conf)
    _render_conf(layout, host)
    _write_marker(
        layout,
        {
            "layout": _LAYOUT_VERSION,
            "realm": realm.upper(),
            "domain": domain.upper(),
            "host": host,
            "base_dn": base_dn_for_realm(realm),
            "admin_dn": admin_dn_for_realm(realm),
            "provisioned_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    return status(base_dir=layout.base)


# samba-tool is a Python program using the distribution's interpreter and its samba bindings;
# running its entry point in-process lets the password travel over stdin instead of argv.
_PROVISION_BOOTSTRAP = """
import json, sys
secret = json.loads(sys.stdin.read())["password"]
from samba.netcmd.main import cmd_sambatool
args = json.loads(sys.argv[1]) + ["--adminpass=" + secret]
sys.argv = ["samba-tool"]
try:
    rc = cmd_sambatool()._run("samba-tool", "domain", "provision", *args)
except SystemExit as exc:
    rc = exc.code
sys.exit(rc or 0)
"""


def _run_samba_tool_provision(
    layout: _Layout,
    *,
    admin_password: str,
    realm: str,
    domain: str,
    host: str,
    backend_store_size: str,
    timeout: float,
) -> None:
    if not admin_password:
        raise LabError("an Administrator password is required to provision the lab")
    interpreter = _samba_python()
    args = [
        f"--realm={realm.upper()}",
        f"--domain={domain.upper()}",
        "--server-role=dc",
        "--dns-backend=NONE",
        "--use-rfc2307",
        f"--targetdir={layout.base}",
        "--host-name=dc1",
        f"--host-ip={host}",
        "--backend-store=mdb",
        f"--backend-store-size={backend_store_size}",
        "--option=interfaces=lo",
        "--option=bind interfaces only=yes",
        "--quiet",
    ]
    try:
        proc = subprocess.run(
            [interpreter, "-c", _PROVISION_BOOTSTRAP, json.dumps(args)],
            input=json.dumps({"password": admin_password}),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=layout.base,
            env=_clean_env(),
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"samba-tool domain provision did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        output = _scrub(proc.stderr + proc.stdout, admin_password)
        raise LabError(
            f"samba-tool domain provision failed (exit {proc.returncode}):\n{_tail_text(output, 25)}"
        )


def _samba_python() -> str:
    """The interpreter samba-tool runs under (the distribution's, which has the samba bindings)."""
    tool = shutil.which("samba-tool") or "/usr/bin/samba-tool"
    try:
        first = Path(tool).read_text(errors="replace").splitlines()[0]
    except (OSError, IndexError) as exc:
        raise LabError("samba-tool not found: install the samba and samba-ad-dc packages") from exc
    match = re.match(r"#!\s*(\S+)", first)
    return match.group(1) if match else "/usr/bin/python3"


def _samba_binary() -> str:
    binary = shutil.which("samba") or ("/usr/sbin/samba" if Path("/usr/sbin/samba").exists() else None)
    if binary is None:
        raise LabError("the samba binary was not found: install the samba-ad-dc package")
    return binary


def _clean_env() -> dict[str, str]:
    # A virtualenv's variables would make the distribution's Python look in the wrong place.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    env["PATH"] = env.get("PATH", "") + ":/usr/sbin:/usr/bin:/sbin:/bin"
    return env


def _render_conf(layout: _Layout, host: str) -> None:
    """Write etc/smb.conf from the provisioned one, with the lab's settings in [global].

    The provisioned file lists every service in ``server services`` and points pid, socket and log
    paths at the system locations; a second instance would then refuse to start (samba is already
    running) and the first would start services the lab does not need.
    """
    text = layout.generated_conf.read_text()
    global_start = text.find("[global]")
    if global_start < 0:
        raise LabError(f"{layout.generated_conf} has no [global] section")
    next_section = re.search(r"^\s*\[(?!global\])", text[global_start + 1 :], flags=re.M)
    global_end = global_start + 1 + next_section.start() if next_section else len(text)
    replaced = {
        "server services",
        "interfaces",
        "bind interfaces only",
        "pid directory",
        "ncalrpc dir",
        "winbindd socket directory",
        "log file",
        "logging",
        "log level",
        "max log size",
        "panic action",
        "ldap server require strong auth",
        "dsdb:schema update allowed",
        "ldb:nosync",
    }
    kept = [
        line
        for line in text[global_start:global_end].splitlines()
        if line.split("=", 1)[0].strip().lower() not in replaced
    ]
    run = layout.run_dir
    settings = {
        "server services": "ldap",
        "interfaces": f"{host}/8",
        "bind interfaces only": "yes",
        "pid directory": str(run),
        "ncalrpc dir": str(run / "ncalrpc"),
        "winbindd socket directory": str(run / "winbindd"),
        "log file": str(layout.log_file),
        "logging": "file",
        "log level": "1",
        "max log size": "10000",
        # Simple bind over plain LDAP on loopback, as the portal's lab settings use it.
        "ldap server require strong auth": "no",
        # Lets exchange_schema add the Exchange attributes over LDAP; read when the schema loads.
        "dsdb:schema update allowed": "true",
        # The lab is disposable; skipping fsync makes bulk seeding several times faster.
        "ldb:nosync": "true",
    }
    body = "\n".join(kept).rstrip() + "\n" + "".join(f"\t{k} = {v}\n" for k, v in settings.items()) + "\n"
    layout.conf.write_text(text[:global_start] + body + text[global_end:].lstrip("\n"))
    for directory in (run, run / "ncalrpc", run / "winbindd", layout.log_dir):
        directory.mkdir(parents=True, exist_ok=True)


def _read_marker(layout: _Layout) -> dict | None:
    try:
        data = json.loads(layout.marker.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_marker(layout: _Layout, meta: dict) -> None:
    tmp = layout.marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    tmp.replace(layout.marker)


def _wipe(layout: _Layout) -> None:
    base = layout.base
    if not base.exists():
        return
    if not base.is_dir():
        raise LabError(f"{base} exists and is not a directory")
    strangers = sorted(p.name for p in base.iterdir() if p.name not in _OWN_NAMES)
    if strangers:
        raise LabError(
            f"refusing to wipe {base}: it holds {', '.join(strangers[:5])}, which the lab did not create"
        )
    for child in base.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


# --------------------------------------------------------------------------------------------
# running


def start(*, base_dir: Path, timeout: float = 30.0) -> LabStatus:
    """Start the DC and return once its LDAP port answers a rootDSE query.

    Idempotent: returns the status at once when the lab is already running. Raises LabError with
    the tail of Samba's log when the daemon exits or the port stays silent for ``timeout`` seconds.
    """
    layout = _Layout(Path(base_dir).resolve())
    meta = _read_marker(layout)
    if meta is None or not layout.sam.exists():
        raise LabError(f"no lab is provisioned under {layout.base}; call provision() first")
    host = meta.get("host", DEFAULT_HOST)
    if _is_running(layout) is not None:
        return status(base_dir=layout.base)
    if port_open(host, LDAP_PORT, 0.5):
        raise LabError(
            f"{host}:{LDAP_PORT} is already served by another process; give this lab another loopback "
            "address (host=...) or stop that process"
        )
    _render_conf(layout, host)
    with contextlib.suppress(FileNotFoundError):
        layout.pid_file.unlink()  # stale: Samba leaves it behind when it exits
    log_offset = layout.log_file.stat().st_size if layout.log_file.exists() else 0
    # Without -F samba daemonises: the launcher exits at once and the daemon, reparented to init in
    # its own session, outlives this Python process and never becomes its zombie.
    try:
        proc = subprocess.run(
            [_samba_binary(), "-M", "single", "-s", str(layout.conf)],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=layout.base,
            env=_clean_env(),
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError("the samba launcher did not return within 30 s") from exc
    if proc.returncode != 0:
        raise LabError(
            f"samba exited with status {proc.returncode}:\n"
            f"{_tail_text(proc.stderr + proc.stdout, 10)}\n{_log_tail(layout, log_offset)}"
        )
    launched = time.monotonic()
    deadline = launched + timeout
    seen_pid: int | None = None
    while True:
        pid = _is_running(layout)
        if pid is not None:
            seen_pid = pid
            if _ldap_answers(host, LDAP_PORT, 1.0):
                return status(base_dir=layout.base)
        elif seen_pid is not None or (time.monotonic() - launched > 10 and not layout.pid_file.exists()):
            raise LabError(f"samba exited during start-up\n{_log_tail(layout, log_offset)}")
        if time.monotonic() > deadline:
            raise LabError(
                f"samba did not answer on {host}:{LDAP_PORT} within {timeout:.0f} s\n"
                + _log_tail(layout, log_offset)
            )
        time.sleep(0.1)


def stop(*, base_dir: Path, timeout: float = 15.0) -> LabStatus:
    """Stop the DC: SIGTERM to exactly the pid in Samba's pid file, SIGKILL after ``timeout``.

    Idempotent: a lab that is not running (or a stale pid file) is left as it is. The pid is only
    signalled when it really is this lab's samba process (see :func:`_is_running`).
    """
    layout = _Layout(Path(base_dir).resolve())
    pid = _is_running(layout)
    if pid is not None:
        _signal(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            _signal(pid, signal.SIGKILL)
            if not _wait_gone(pid, 5.0):
                raise LabError(f"samba (pid {pid}) survived SIGKILL")
    with contextlib.suppress(FileNotFoundError):
        layout.pid_file.unlink()
    return status(base_dir=layout.base)


def status(*, base_dir: Path) -> LabStatus:
    layout = _Layout(Path(base_dir).resolve())
    meta = _read_marker(layout) or {}
    provisioned = bool(meta) and layout.sam.exists()
    pid = _is_running(layout)
    return LabStatus(
        base_dir=layout.base,
        provisioned=provisioned,
        running=pid is not None,
        pid=pid,
        host=meta.get("host", DEFAULT_HOST),
        ldap_port=LDAP_PORT,
        ldaps_port=LDAPS_PORT,
        gc_port=GC_PORT,
        gcs_port=GCS_PORT,
        realm=meta.get("realm"),
        domain=meta.get("domain"),
        base_dn=meta.get("base_dn"),
        admin_dn=meta.get("admin_dn"),
        ca_file=layout.ca_file if layout.ca_file.exists() else None,
        log_file=layout.log_file,
    )


def reset(
    *,
    base_dir: Path,
    admin_password: str,
    realm: str = DEFAULT_REALM,
    domain: str = DEFAULT_DOMAIN,
    host: str = DEFAULT_HOST,
    apply_schema: bool = True,
    timeout: float = 30.0,
) -> LabStatus:
    """Stop, wipe, provision and start a fresh lab (with the Exchange schema unless told not to)."""
    layout = _Layout(Path(base_dir).resolve())
    stop(base_dir=layout.base)
    _wipe(layout)
    provision(base_dir=layout.base, admin_password=admin_password, realm=realm, domain=domain, host=host)
    current = start(base_dir=layout.base, timeout=timeout)
    if apply_schema:
        _apply_exchange_schema(current, admin_password)
    return current


def ensure_up(
    *,
    base_dir: Path,
    admin_password: str,
    realm: str = DEFAULT_REALM,
    domain: str = DEFAULT_DOMAIN,
    host: str = DEFAULT_HOST,
    timeout: float = 30.0,
) -> LabStatus:
    """Make the lab usable, doing only what is missing: provision, start, add the Exchange schema.

    Cheap when everything is in place (a status check and one schema query). A lab running on
    another loopback address than ``host`` is restarted on ``host``.
    """
    layout = _Layout(Path(base_dir).resolve())
    meta = _read_marker(layout)
    if meta is not None and meta.get("host") != host and _is_running(layout) is not None:
        stop(base_dir=layout.base)
    provision(base_dir=layout.base, admin_password=admin_password, realm=realm, domain=domain, host=host)
    current = start(base_dir=layout.base, timeout=timeout)
    _apply_exchange_schema(current, admin_password)
    return current


def _apply_exchange_schema(current: LabStatus, admin_password: str) -> None:
    from portal.lab import exchange_schema  # local: exchange_schema is independent of this module

    with exchange_schema.admin_connection(
        host=current.host, port=current.ldap_port, bind_dn=current.admin_dn or "", password=admin_password
    ) as conn:
        if exchange_schema.schema_missing(conn):
            exchange_schema.apply_schema(conn)


# --------------------------------------------------------------------------------------------
# process inspection


def _is_running(layout: _Layout) -> int | None:
    """The pid of this lab's samba, or None.

    The pid file alone is not trusted: Samba leaves it behind on exit and the number may since
    belong to another process. The pid must be a live samba executable holding a file of this lab
    open (Samba rewrites its command line, so the config path cannot be checked there).
    """
    try:
        pid = int(layout.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if pid <= 1:
        return None
    proc = Path(f"/proc/{pid}")
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in {"Z", "X"}:
            return None
        if Path(os.readlink(proc / "exe")).name.split(" ")[0] != "samba":
            return None
    except (OSError, IndexError):
        return None
    private = str(layout.base / "private") + os.sep
    try:
        for fd in (proc / "fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd).startswith(private):
                    return pid
    except OSError:
        return None
    return None


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _ldap_answers(host: str, port: int, timeout: float) -> bool:
    """True once an anonymous rootDSE read succeeds (the port opens before LDAP is served)."""
    import ldap3

    server = ldap3.Server(host, port=port, get_info=ldap3.NONE, connect_timeout=timeout)
    # ldap3 packs receive_timeout into a struct for setsockopt: it must be an int.
    conn = ldap3.Connection(server, receive_timeout=max(1, int(timeout)), raise_exceptions=False)
    try:
        if not conn.bind():
            return False
        return bool(
            conn.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["defaultNamingContext"])
        )
    except Exception:  # any failure means "not yet"
        return False
    finally:
        with contextlib.suppress(Exception):
            conn.unbind()


def _check_host(host: str) -> None:
    try:
        packed = socket.inet_aton(host)
    except OSError as exc:
        raise LabError(f"host must be an IPv4 loopback address such as 127.0.0.1, not {host!r}") from exc
    if packed[0] != 127 or host.count(".") != 3:
        raise LabError(f"the lab only listens on loopback (127.0.0.0/8), not on {host!r}")


# --------------------------------------------------------------------------------------------
# logs


def _tail_text(text: str, lines: int) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _log_tail(layout: _Layout, offset: int = 0, lines: int = 30) -> str:
    try:
        with layout.log_file.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(offset if offset <= size else 0)
            text = handle.read().decode(errors="replace")
    except OSError:
        return f"(no log at {layout.log_file})"
    return f"last lines of {layout.log_file}:\n{_tail_text(text, lines)}"


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "********") if secret else text


def _wait_gone(pid: int, timeout: float) -> bool:
    """True once the pid is free. Samba daemonises, so its exit is only final once init reaps it;
    a zombie still holds the pid that the next start would check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it happens to be our child
        time.sleep(0.05)
    return False


def iter_log(*, base_dir: Path, lines: int = 50) -> Iterator[str]:
    """The last ``lines`` lines of Samba's log, for the lab status page and error reports."""
    layout = _Layout(Path(base_dir).resolve())
    yield from _log_tail(layout, 0, lines).splitlines()[1:]
