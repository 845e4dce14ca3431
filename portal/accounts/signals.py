from datetime import timedelta

from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models import Q
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone

from portal.audit.context import request_actor
from portal.audit.models import AuditEvent
from portal.audit.services import record

from .models import TotpDevice


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    record(actor=user, action="auth.login", target=f"user:{user.get_username()}", request=request,
           detail={"method": getattr(user, "_sign_in_method", "password")})


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        record(actor=user, action="auth.logout", target=f"user:{user.get_username()}", request=request)


# Failed sign-ins are counted by django-axes (its AccessAttempt rows), not written one audit row
# each: a password-guessing run must not flood the audit log. The lockout and its end are audited.


@receiver(user_locked_out)
def _locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    # axes signals again at every attempt made while locked: one audit row per lockout, not per attempt.
    target = f"user:{str(username or '')[:150]}"
    since = timezone.now() - timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)
    recent = AuditEvent.objects.filter(action="auth.lockout", time__gte=since)
    if recent.filter(Q(target=target) | Q(source_ip=ip_address) if ip_address else Q(target=target)).exists():
        return
    record(actor=None, action="auth.lockout", target=target,
           after={"failures": settings.AXES_FAILURE_LIMIT, "minutes": settings.LOGIN_LOCKOUT_MINUTES}, request=request)


@receiver(post_delete, sender=AccessAttempt)
def _attempts_cleared(sender, instance, **kwargs):
    if instance.failures_since_start < settings.AXES_FAILURE_LIMIT:
        return  # a count that never locked anyone out ends silently
    actor, request = request_actor()
    # By a person (Django admin, the unlock command) or by the cool-off running out.
    record(actor=actor, action="auth.unlock", target=f"user:{instance.username or ''}",
           before={"failures": instance.failures_since_start},
           after={"by": "an administrator" if actor is not None else "cool-off expired or command line"},
           request=request)


# -- changes of accounts, roles and role membership ----------------------------------------------
# Whoever makes them (the Django admin, a management command, a shell), they reach the audit log.

_TRACKED = ("username", "email", "first_name", "last_name", "is_active", "is_staff", "is_superuser")


def _state(user) -> dict:
    return {field: getattr(user, field) for field in _TRACKED}


@receiver(pre_save, sender=settings.AUTH_USER_MODEL)
def _remember_account(sender, instance, update_fields=None, **kwargs):
    if instance.pk is None:
        instance._audit_before = None
        return
    old = sender.objects.filter(pk=instance.pk).first()
    instance._audit_before = _state(old) if old else None
    instance._audit_password_changed = bool(old and old.password != instance.password)


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def _account_saved(sender, instance, created, update_fields=None, **kwargs):
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # every sign-in writes last_login: that is auth.login's event, not a change
    actor, request = request_actor()
    target = f"user:{instance.get_username()}"
    if created:
        record(actor=actor, action="account.create", target=target, after=_state(instance), request=request)
        return
    before = getattr(instance, "_audit_before", None) or {}
    after = _state(instance)
    changed = {k: v for k, v in after.items() if before.get(k) != v}
    if changed:
        record(actor=actor, action="account.change", target=target,
               before={k: before.get(k) for k in changed}, after=changed, request=request)
    if getattr(instance, "_audit_password_changed", False):
        # That it changed, never what to: no hash, no value.
        record(actor=actor, action="account.password_change", target=target, request=request)


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def _account_deleted(sender, instance, **kwargs):
    actor, request = request_actor()
    record(actor=actor, action="account.delete", target=f"user:{instance.get_username()}",
           before=_state(instance), request=request)


@receiver(m2m_changed, sender=get_user_model().groups.through)
def _membership_changed(sender, instance, action, reverse, model, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "pre_clear", "post_clear"):
        return
    actor, request = request_actor()
    verb = {"post_add": "added", "post_remove": "removed"}.get(action, "cleared")
    if action == "pre_clear":
        # What a clear removes is only known before it happens.
        instance._audit_cleared = (list(instance.groups.values_list("name", flat=True)) if not reverse
                                   else list(instance.user_set.values_list("username", flat=True)))
        return
    if not reverse:  # user.groups.add(group, ...)
        names = (sorted(Group.objects.filter(pk__in=pk_set).values_list("name", flat=True)) if pk_set
                 else getattr(instance, "_audit_cleared", []))
        if names:
            record(actor=actor, action=f"account.roles.{verb}", target=f"user:{instance.get_username()}",
                   after={"roles": names, "now": sorted(instance.groups.values_list("name", flat=True))},
                   request=request)
    else:  # group.user_set.add(user, ...)
        users = (sorted(model.objects.filter(pk__in=pk_set).values_list("username", flat=True)) if pk_set
                 else getattr(instance, "_audit_cleared", []))
        for username in users:
            record(actor=actor, action=f"account.roles.{verb}", target=f"user:{username}",
                   after={"roles": [instance.name]}, request=request)


@receiver(m2m_changed, sender=Group.permissions.through)
def _role_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "post_clear") or reverse:
        return
    actor, request = request_actor()
    perms = sorted(f"{app}.{code}" for app, code in Permission.objects.filter(pk__in=pk_set or ()).values_list(
        "content_type__app_label", "codename"))
    record(actor=actor, action=f"role.permissions.{action.removeprefix('post_')}", target=f"role:{instance.name}",
           after={"permissions": perms}, request=request)


@receiver(post_save, sender=Group)
def _role_saved(sender, instance, created, **kwargs):
    if created:
        actor, request = request_actor()
        record(actor=actor, action="role.create", target=f"role:{instance.name}", request=request)


@receiver(post_delete, sender=Group)
def _role_deleted(sender, instance, **kwargs):
    actor, request = request_actor()
    record(actor=actor, action="role.delete", target=f"role:{instance.name}", request=request)


@receiver(post_delete, sender=TotpDevice)
def _authenticator_removed(sender, instance, **kwargs):
    actor, request = request_actor()
    record(actor=actor, action="account.totp.reset", target=f"user:{instance.user.get_username()}",
           before={"confirmed": instance.confirmed}, request=request)
