from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from portal.audit.services import record


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    record(actor=user, action="auth.login", target=f"user:{user.get_username()}", request=request)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        record(actor=user, action="auth.logout", target=f"user:{user.get_username()}", request=request)


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    # Only the username: the password the person typed must never reach a log or the audit trail.
    username = str(credentials.get("username", ""))[:150]
    record(actor=None, action="auth.login_failed", target=f"user:{username}", request=request)
