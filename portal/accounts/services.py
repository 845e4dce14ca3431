from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from .roles import ROLE_PERMISSIONS


def _permission(dotted: str) -> Permission:
    app_label, codename = dotted.split(".", 1)
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


@transaction.atomic
def do_sync_roles() -> dict[str, int]:
    """Make each role's group hold exactly the permissions roles.py gives it."""
    counts = {}
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for dotted in sorted(perms):
            try:
                wanted.append(_permission(dotted))
            except Permission.DoesNotExist:
                # Mid-migration (an app's permissions not created yet); the final post_migrate fixes it.
                continue
        group.permissions.set(wanted)
        counts[role] = len(wanted)
    return counts


@transaction.atomic
def do_ensure_user(*, username: str, password: str, roles: list[str], superuser: bool = False):
    """Create or update a login holding exactly `roles` (used for the demo accounts)."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.set_password(password)
    user.is_active = True
    user.is_staff = superuser
    user.is_superuser = superuser
    user.save()
    user.groups.set(Group.objects.filter(name__in=roles))
    return user
