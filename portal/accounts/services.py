from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone

from portal.audit.services import record

from . import totp
from .models import EntraIdentity, TotpDevice
from .oidc import Identity
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


# -- sign-in with Entra ID -------------------------------------------------------------------------


class SignInRefused(Exception):
    """The person proved who they are to Entra ID but may not use the portal; the message says why."""


def roles_from_token(*, app_roles: Iterable[str], groups: Iterable[str]) -> list[str]:
    """Portal roles from the token's app roles (ENTRA_APP_ROLE_MAP) and groups (ENTRA_GROUP_ROLE_MAP).

    A value the maps do not name gives nothing: deny by default."""
    found = {settings.ENTRA_APP_ROLE_MAP.get(value) for value in app_roles}
    group_map = {key.lower(): role for key, role in settings.ENTRA_GROUP_ROLE_MAP.items()}
    found |= {group_map.get(group.lower()) for group in groups}
    return sorted(role for role in found if role in ROLE_PERMISSIONS)


@transaction.atomic
def do_sign_in_with_entra(*, identity: Identity):
    """The portal account of a person Entra ID signed in: created at the first sign-in, its name,
    e-mail and roles brought to what the token says at every sign-in (a removed app role is a
    removed portal role). Returns the user; the view logs it in."""
    user_model = get_user_model()
    link = (EntraIdentity.objects.select_for_update().select_related("user")
            .filter(tenant_id=identity.tenant_id, object_id=identity.object_id).first())
    if link is None:
        if user_model.objects.filter(username__iexact=identity.username).exists():
            # Never hand an existing (local) account to whoever Entra ID says has that name.
            raise SignInRefused(f"A portal account named {identity.username} already exists and is not linked to "
                                "Entra ID. An administrator must rename or remove it first.")
        user = user_model(username=identity.username)
        user.set_unusable_password()
        link = EntraIdentity(user=user, tenant_id=identity.tenant_id, object_id=identity.object_id)
    user = link.user
    if user.pk is not None and not user.is_active:
        raise SignInRefused("Your portal account is disabled. Ask an administrator.")
    first, _, last = identity.name.partition(" ")
    user.first_name, user.last_name = first[:150], last[:150]
    user.email = identity.email[:254]
    user.is_staff = user.is_superuser = False  # the Django admin stays with local break-glass accounts
    user.save()
    link.user = user
    link.last_sign_in = timezone.now()
    link.token_roles = sorted({*identity.roles, *identity.groups})
    link.save()
    wanted = set(roles_from_token(app_roles=identity.roles, groups=identity.groups))
    current = set(user.groups.filter(name__in=ROLE_PERMISSIONS).values_list("name", flat=True))
    if wanted != current:  # only a real change reaches the audit log (account.roles.*)
        if current - wanted:
            user.groups.remove(*Group.objects.filter(name__in=current - wanted))
        if wanted - current:
            user.groups.add(*Group.objects.filter(name__in=wanted - current))
    return user


# -- second factor of local accounts ---------------------------------------------------------------


@transaction.atomic
def do_begin_totp_enrolment(*, user) -> str:
    """A new secret for a user who has no confirmed authenticator yet (kept unconfirmed until a code
    comes back). Returns the secret, to show as a QR code and a key."""
    device = TotpDevice.objects.select_for_update().filter(user=user).first()
    if device is not None and device.confirmed:
        raise ValueError("this account already has an authenticator")
    secret = totp.new_secret()
    if device is None:
        device = TotpDevice(user=user)
    device.secret_encrypted = totp.encrypt(secret)
    device.save()
    return secret


@transaction.atomic
def do_confirm_totp(*, user, code: str, request=None) -> list[str] | None:
    """Confirm the enrolment with the first code from the app; returns the recovery codes (shown
    once) or None when the code is wrong."""
    device = TotpDevice.objects.select_for_update().get(user=user, confirmed=False)
    step = totp.matching_step(secret=totp.decrypt(device.secret_encrypted), code=code, after_step=0)
    if step is None:
        return None
    codes, hashes = totp.new_recovery_codes()
    device.confirmed, device.last_used_step, device.recovery_code_hashes = True, step, hashes
    device.save()
    record(actor=user, action="account.totp.enrolled", target=f"user:{user.get_username()}", request=request)
    return codes


@transaction.atomic
def check_second_factor(*, user, code: str, request=None) -> bool:
    """A code from the authenticator (each good once) or one of the recovery codes (used up)."""
    device = TotpDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
    if device is None:
        return False
    step = totp.matching_step(secret=totp.decrypt(device.secret_encrypted), code=code,
                              after_step=device.last_used_step)
    if step is not None:
        device.last_used_step = step
        device.save(update_fields=["last_used_step"])
        return True
    hashed = totp.hash_recovery_code(code)
    if hashed in device.recovery_code_hashes:
        device.recovery_code_hashes = [h for h in device.recovery_code_hashes if h != hashed]
        device.save(update_fields=["recovery_code_hashes"])
        record(actor=user, action="account.totp.recovery_code_used", target=f"user:{user.get_username()}",
               after={"left": len(device.recovery_code_hashes)}, request=request)
        return True
    return False


def do_unlock_sign_in(*, attempt_id: int) -> str | None:
    """End one lockout now. Deleting axes' count is what unlocks; its post_delete signal audits the unlock
    (auth.unlock, by the signed-in person), as it does for the Django admin and `axes_reset_username`.
    Returns the username unlocked, None when that lockout had already ended."""
    from .selectors import locked_out_attempts

    attempt = locked_out_attempts().filter(pk=attempt_id).first()
    if attempt is None:  # unlocked meanwhile, or its cool-off ran out (axes clears that count itself)
        return None
    attempt.delete()
    return attempt.username or ""
