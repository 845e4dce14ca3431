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
            ensure_sign_in_seeded(store=store)
            return existing
        with active_directory() as directory:
            engine.run_cycle(directory=directory, store=store, base_dn=base_dn(), policy="Initial")
            cloud_manifest = cloud_seed.seed_cloud(store=store, manifest=manifest, seed=seed)
            # A full cycle, not a delta: the seed added the accepted (verified) domains, and only a full
            # cycle recomputes the addresses of objects that did not change on-premises (the groups).
            engine.run_cycle(directory=directory, store=store, base_dn=base_dn(), policy="Initial")
        ensure_sign_in_seeded(store=store)
        return cloud_manifest
    finally:
        store.close()


# Who signs in to the portal through the lab's "Sign in with Microsoft": one synced lab user per
# portal role (the app role ENTRA_APP_ROLE_MAP maps to it) and one holding no app role.
SIGN_IN_ACCOUNTS = ("Helpdesk", "Administrator", "Approver", "Auditor", "no role")
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


def sign_in_accounts_file() -> Path:
    return cloud_dir() / "sign-in-accounts.json"


def sign_in_accounts() -> dict[str, dict]:
    """{portal role or "no role": {user_id, upn, display_name, password, app_role}} of the seeded lab."""
    import json

    path = sign_in_accounts_file()
    return json.loads(path.read_text()) if path.exists() else {}


def ensure_sign_in_seeded(*, store) -> dict[str, dict]:
    """The portal's app registration made a web app with app roles (redirect URIs on loopback, any
    port), and the lab users of SIGN_IN_ACCOUNTS given their app role and a lab password (generated
    once, kept in sign-in-accounts.json, mode 600). Idempotent: a complete earlier seed is kept."""
    import json
    from itertools import islice

    from .cloud import oidc, server

    creds = server.lab_credentials(data_dir=cloud_dir())
    role_values = {role: value for value, role in settings.ENTRA_APP_ROLE_MAP.items()}
    oidc.configure_app(data_dir=cloud_dir(), client_id=creds.client_id, app_roles=settings.ENTRA_APP_ROLE_MAP,
                       redirect_uris=[f"http://{host}/login/microsoft/callback/" for host in LOOPBACK_NAMES])
    saved = sign_in_accounts()
    known = oidc.read_config(cloud_dir())["accounts"]
    if set(saved) == set(SIGN_IN_ACCOUNTS) and all(
            entry["user_id"] in known and store.get_object(object_id=entry["user_id"], kind="user")
            for entry in saved.values()):
        return saved
    candidates = (u for u in store.iter_objects(kind="user")
                  if u.get("onPremisesSyncEnabled") and u.get("accountEnabled", True) and u.get("userPrincipalName"))
    saved = {}
    for label, user in zip(SIGN_IN_ACCOUNTS, islice(candidates, len(SIGN_IN_ACCOUNTS)), strict=False):
        password = f"Lab-{secrets.token_urlsafe(12)}"
        app_role = role_values.get(label)
        oidc.set_password(data_dir=cloud_dir(), user_id=user["id"], password=password)
        oidc.assign_app_role(data_dir=cloud_dir(), client_id=creds.client_id, user_id=user["id"], role=None)
        if app_role:
            oidc.assign_app_role(data_dir=cloud_dir(), client_id=creds.client_id, user_id=user["id"], role=app_role)
        saved[label] = {"user_id": user["id"], "upn": user["userPrincipalName"],
                        "display_name": user.get("displayName", ""), "password": password, "app_role": app_role}
    path = sign_in_accounts_file()
    path.touch(mode=0o600)
    path.write_text(json.dumps(saved, indent=2))
    return saved


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
