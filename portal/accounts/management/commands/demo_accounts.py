import json
import secrets

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.accounts.roles import ADMINISTRATOR, APPROVER, AUDITOR, HELPDESK
from portal.accounts.services import do_ensure_user, do_sync_roles

DEMO_USERS = [
    ("helpdesk", [HELPDESK], False),
    ("admin", [ADMINISTRATOR], False),
    ("approver", [APPROVER], False),
    ("auditor", [AUDITOR], False),
    ("superuser", [ADMINISTRATOR], True),
]


class Command(BaseCommand):
    help = "Create one demo login per role (passwords generated once, kept in var/demo-accounts.json)."

    def handle(self, *args, **options):
        store = settings.VAR_DIR / "demo-accounts.json"
        saved = json.loads(store.read_text()) if store.exists() else {}
        do_sync_roles()
        for username, roles, superuser in DEMO_USERS:
            saved.setdefault(username, f"demo-{secrets.token_urlsafe(9)}")
            do_ensure_user(username=username, password=saved[username], roles=roles, superuser=superuser)
        store.touch(mode=0o600)
        store.write_text(json.dumps(saved, indent=2))
        self.stdout.write("Demo accounts (this machine only; stored in var/demo-accounts.json):")
        for username, roles, superuser in DEMO_USERS:
            role = ", ".join(roles) + (" + Django admin" if superuser else "")
            self.stdout.write(f"  {username:<10} {saved[username]:<22} {role}")
