"""Where the rehearsal lab lives on this machine, from the Django settings (portal/lab/samba.py and
seed.py know nothing of Django)."""

from __future__ import annotations

import secrets
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


def cloud_hooks() -> dict[str, str | None]:
    """What the lab cloud process calls for Start-ADSyncSyncCycle and Exchange on-premises cmdlets
    (module:function, run in that process, which inherits this environment)."""
    return {"sync_runner": "portal.lab.sync:sync_runner", "onprem_runner": "portal.lab.onprem:run"}
