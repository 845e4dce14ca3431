"""Where the rehearsal lab lives on this machine, from the Django settings (portal/lab/samba.py and
seed.py know nothing of Django)."""

from __future__ import annotations

import contextlib
import secrets
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from . import samba


def ad_dir() -> Path:
    return settings.LAB_DIR / "ad"


def base_dn() -> str:
    return samba.base_dn_for_realm(settings.LAB_AD_REALM)


def admin_dn() -> str:
    return samba.admin_dn_for_realm(settings.LAB_AD_REALM)


def _password_file() -> Path:
    return settings.LAB_DIR / "ad-admin-password"


def ad_admin_password(*, create: bool) -> str:
    """Generated once per lab (mode 600), so no password is ever committed or typed."""
    path = _password_file()
    if path.exists():
        return path.read_text().strip()
    if not create:
        raise FileNotFoundError(f"the lab AD has no password yet ({path}): run `manage.py lab ad up`")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Samba's complexity rules want upper, lower, digit and symbol.
    password = f"Lab-{secrets.token_urlsafe(18)}-7x"
    path.touch(mode=0o600)
    path.write_text(password)
    return password


def cloud_dir() -> Path:
    return settings.LAB_DIR / "cloud"


def seed_manifest_file() -> Path:
    return settings.LAB_DIR / "seed-manifest.json"


def write_sync_options() -> None:
    """The lab sync server's options (portal/lab/sync/ reads them at each cycle), from the settings."""
    import json

    from .sync import OPTIONS_FILE

    path = cloud_dir() / OPTIONS_FILE
    options = json.loads(path.read_text()) if path.exists() else {}
    options["latency_seconds"] = settings.LAB_SYNC_LATENCY_SECONDS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(options, indent=2))


def cloud_hooks() -> dict[str, str | None]:
    """What the lab cloud process calls for Start-ADSyncSyncCycle and Exchange on-premises cmdlets
    (module:function, run in that process, which inherits this environment)."""
    return {"sync_runner": "portal.lab.sync:sync_runner", "onprem_runner": "portal.lab.onprem:run"}


def ensure_seeded(*, users: int, seed: int, reset: bool = False, progress=None, on_rebuild=None):
    """The lab AD holding this seed. A lab holding another seed (other parameters, an older seeder,
    an interrupted run) is rebuilt: it is a rehearsal, and a stale seed would mislead every test."""
    from portal.connectors.registry import active_directory

    from .seed import SeedError
    from .seed import seed as do_seed

    with active_directory() as directory:
        try:
            return do_seed(directory, base_dn=base_dn(), users=users, seed=seed, reset=reset, progress=progress)
        except SeedError as exc:
            if reset or "reset=True" not in str(exc):
                raise
            if on_rebuild:
                on_rebuild(str(exc))
            return do_seed(directory, base_dn=base_dn(), users=users, seed=seed, reset=True, progress=progress)


def ensure_cloud_seeded(*, manifest, seed: int):
    """What lives only in the cloud, on top of the AD seed: a first full sync, then licences, MFA
    states, cloud-only groups and lists (portal/lab/cloud_seed.py), then a full cycle so licensed
    users get their mailboxes, every address is computed with the accepted domains and cloud groups
    are written back. Returns the cloud manifest."""
    from portal.connectors.registry import active_directory

    from . import cloud_seed
    from . import sync as engine
    from .cloud import server
    from .cloud.store import CloudStore

    server.lab_credentials(data_dir=cloud_dir())  # the tenant and its app registration
    store = CloudStore.open(data_dir=cloud_dir())
    try:
        existing = cloud_seed.read_cloud_manifest(store=store)
        if existing is not None:
            return existing
        with active_directory() as directory:
            engine.run_cycle(directory=directory, store=store, base_dn=base_dn(), policy="Initial")
            cloud_manifest = cloud_seed.seed_cloud(store=store, manifest=manifest, seed=seed)
            # A full cycle, not a delta: the seed added the accepted (verified) domains, and only a full
            # cycle recomputes the addresses of objects that did not change on-premises (the groups).
            engine.run_cycle(directory=directory, store=store, base_dn=base_dn(), policy="Initial")
        return cloud_manifest
    finally:
        store.close()


@contextlib.contextmanager
def servers_left_as_found() -> Iterator[None]:
    """For a script that brings this LAB_DIR's servers up (the benchmarks): on the way out, stop the lab AD
    and lab cloud that were not running on the way in, also when it fails, is interrupted or terminated, so
    that it leaves no server behind (and one that a developer had running stays up)."""
    from .cloud import server

    ad_was_running = samba.status(base_dir=ad_dir()).running
    cloud_was_running = server.status(data_dir=cloud_dir()).running
    # SIGTERM (make's trap, kill) would end Python without running the finally below.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        # The cloud first: its hooks call into the lab AD.
        if not cloud_was_running:
            server.stop(data_dir=cloud_dir())
        if not ad_was_running:
            samba.stop(base_dir=ad_dir())
