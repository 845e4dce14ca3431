import logging
import time

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import LoginView, LogoutView
from django.http import Http404
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from . import totp
from .middleware import ENTRA_SESSION_KEY, SIGN_IN_NOTICE_KEY
from .models import TotpDevice
from .oidc import SignInError
from .permissions import requires
from .roles import ROLE_DESCRIPTIONS, ROLE_PERMISSIONS
from .services import (
    SignInRefused,
    check_second_factor,
    do_begin_totp_enrolment,
    do_confirm_totp,
    do_sign_in_with_entra,
)

logger = logging.getLogger(__name__)


def has_role(user) -> bool:
    return user.is_superuser or user.groups.filter(name__in=ROLE_PERMISSIONS).exists()


@requires()
def home(request):
    """Landing page: any signed-in user sees where they can go and, with a role, their dashboard."""
    from portal.jobs.selectors import dashboard

    if not has_role(request.user):
        return _no_role(request)
    board = dashboard(user=request.user) if request.user.has_perm("jobs.view_job") else None
    if board is not None:
        board["next_step"] = _next_step(request.user, board)
    return render(request, "home.html", {"role_descriptions": ROLE_DESCRIPTIONS, "board": board})


def _next_step(user, board: dict) -> dict | None:
    """What the home page suggests when no job runs or failed: the first thing this role would do next.
    None when the role starts no job and sees only its own (an Approver): the card is left out."""
    if user.has_perm("migrations_app.run_preflight"):
        if board["last_inventory"] is None:
            return {"before": "Start with ", "link": "the DL inventory", "url": reverse("migrations_app:home"),
                    "after": ": it lists every synced distribution list and what stands in the way of moving it."}
        return {"before": "", "link": "Preflight a list", "url": reverse("migrations_app:preflight"),
                "after": " before you migrate it, or pick one from the inventory."}
    if not board["mine_only"]:
        return {"before": "Earlier jobs are in ", "link": "the job list", "url": reverse("jobs:list"), "after": "."}
    return None


def permission_denied(request, exception=None):
    """handler403: a PermissionDenied a view or service raised (the middleware's refusals render
    through the same page) is audited and explained."""
    from .middleware import forbidden

    return forbidden(request, missing=[], reason=str(exception or ""))


# -- signing in and out ---------------------------------------------------------------------------

FLOW_KEY = "entra_sign_in_flow"
PENDING_KEY = "second_factor_pending"
PENDING_SECONDS = 300


def _sign_in_context(request) -> dict:
    return {"entra_sign_in": settings.ENTRA_SIGN_IN, "local_accounts": settings.LOCAL_ACCOUNTS_ENABLED,
            "notice": request.session.pop(SIGN_IN_NOTICE_KEY, "")}


class PortalLoginView(LoginView):
    """The login page: "Sign in with Microsoft" and, while they are on, local accounts (throttled
    and locked out by django-axes, see settings)."""

    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), **_sign_in_context(self.request)}

    def form_valid(self, form):
        if not settings.LOCAL_ACCOUNTS_TOTP:
            return super().form_valid(form)
        # The password was right; the session is not signed in until the second factor is.
        self.request.session[PENDING_KEY] = {"user": form.get_user().pk, "at": time.time(),
                                             "next": self.get_success_url()}
        return redirect("login_second_factor")

    def post(self, request, *args, **kwargs):
        if not settings.LOCAL_ACCOUNTS_ENABLED:
            context = self.get_context_data(form=self.get_form_class()(request))
            context["error"] = "Local accounts are switched off: sign in with Microsoft."
            return self.render_to_response(context, status=403)
        return super().post(request, *args, **kwargs)


def _sign_in_failed(request, message: str, *, status: int = 403):
    logger.warning("sign-in with Entra ID refused: %s", message)
    return render(request, "registration/login.html",
                  {**_sign_in_context(request), "error": message, "form": None}, status=status)


@login_not_required
@require_GET
def entra_start(request):
    """Start the authorization code flow (PKCE, state and nonce made by msal) and go to Entra ID."""
    if not settings.ENTRA_SIGN_IN:
        raise Http404("Sign-in with Microsoft is not configured.")
    from portal.connectors.registry import NotConfigured, entra_sign_in

    redirect_uri = settings.ENTRA_SIGN_IN_REDIRECT_URI or request.build_absolute_uri(reverse("entra_callback"))
    try:
        flow = entra_sign_in().begin(redirect_uri=redirect_uri)
    except (SignInError, NotConfigured) as exc:
        return _sign_in_failed(request, str(exc), status=503)
    next_url = request.GET.get("next", "")
    # Server-side session: the PKCE verifier and nonce never reach the browser.
    request.session[FLOW_KEY] = {"flow": flow, "next": next_url}
    return redirect(flow["auth_uri"])


@login_not_required
@require_GET
def entra_callback(request):
    """Where Entra ID sends the browser back: redeem the code, validate the id token, sign in."""
    from portal.connectors.registry import NotConfigured, entra_sign_in

    pending = request.session.pop(FLOW_KEY, None)  # one answer per flow: a replayed callback finds none
    if pending is None:
        return _sign_in_failed(request, "No sign-in with Microsoft is waiting for this answer in this browser "
                                        "(it was already used, or the session ended): start again.", status=400)
    try:
        identity = entra_sign_in().complete(flow=pending["flow"], response=request.GET.dict())
        user = do_sign_in_with_entra(identity=identity)
    except (SignInError, SignInRefused, NotConfigured) as exc:
        return _sign_in_failed(request, str(exc))
    user._sign_in_method = "entra"
    login(request, user, backend="portal.accounts.backends.LocalAccountBackend")
    request.session[ENTRA_SESSION_KEY] = time.time()
    if not has_role(user):
        return redirect("home")  # which shows what to ask for, and nothing else
    next_url = pending.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        next_url = resolve_url(settings.LOGIN_REDIRECT_URL)
    return redirect(next_url)


class PortalLogoutView(LogoutView):
    """Ends the portal session; someone signed in with Entra ID is offered the Entra sign-out too."""

    def post(self, request, *args, **kwargs):
        was_entra = ENTRA_SESSION_KEY in request.session
        response = super().post(request, *args, **kwargs)
        if not was_entra:
            return response
        from portal.connectors.registry import NotConfigured, entra_sign_in

        try:
            url = entra_sign_in().logout_url(post_logout_redirect_uri=request.build_absolute_uri(reverse("login")))
        except NotConfigured:
            url = None
        return render(request, "registration/logged_out.html", {"entra_logout_url": url})


def _no_role(request):
    """Signed in, but holding no portal role: say which role (and app role) to ask for, nothing else."""
    app_roles = {role: [value for value, mapped in settings.ENTRA_APP_ROLE_MAP.items() if mapped == role]
                 for role in ROLE_DESCRIPTIONS}
    roles = [(role, ROLE_DESCRIPTIONS[role], app_roles[role]) for role in ROLE_DESCRIPTIONS]
    return render(request, "registration/no_role.html",
                  {"entra": hasattr(request.user, "entra_identity"), "roles": roles})


@login_not_required
def second_factor(request):
    """After a local account's password: the TOTP code (or a recovery code), or the enrolment of an
    authenticator when the account has none yet. Wrong codes count toward the lockout (django-axes)."""
    pending = request.session.get(PENDING_KEY)
    if not pending or time.time() - pending["at"] > PENDING_SECONDS:
        request.session.pop(PENDING_KEY, None)
        return redirect("login")
    user = get_user_model().objects.filter(pk=pending["user"], is_active=True).first()
    if user is None or not settings.LOCAL_ACCOUNTS_ENABLED:
        return redirect("login")
    device = TotpDevice.objects.filter(user=user).first()
    code = request.POST.get("code", "") if request.method == "POST" else ""
    context = {"username": user.get_username()}
    if device is None or not device.confirmed:
        if request.method == "POST" and device is not None:
            codes = do_confirm_totp(user=user, code=code, request=request)
            if codes is not None:
                _finish_local_sign_in(request, user)
                return render(request, "registration/recovery_codes.html", {"codes": codes, "next": pending["next"]})
            context["error"] = ("That code is not the one your app shows now. Check the clock of your phone and "
                                "try again.")
            secret = totp.decrypt(device.secret_encrypted)
        else:
            secret = do_begin_totp_enrolment(user=user)
        uri = totp.provisioning_uri(secret=secret, username=user.get_username())
        key = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
        return render(request, "registration/totp_enrol.html", {**context, "qr": totp.qr_svg(uri), "key": key},
                      status=200 if "error" not in context else 400)
    if request.method == "POST":
        if check_second_factor(user=user, code=code, request=request):
            _finish_local_sign_in(request, user)
            return redirect(pending["next"])
        # Counted like a wrong password (AxesMiddleware answers with the lockout page once over the limit).
        user_login_failed.send(sender=__name__, credentials={"username": user.get_username()}, request=request)
        context["error"] = "That code is not valid (or was already used)."
    return render(request, "registration/totp_verify.html", context, status=400 if "error" in context else 200)


def _finish_local_sign_in(request, user) -> None:
    request.session.pop(PENDING_KEY, None)
    user._sign_in_method = "password+totp"
    login(request, user, backend="portal.accounts.backends.LocalAccountBackend")


# -- lockouts of local sign-ins --------------------------------------------------------------------


@requires("accounts.unlock_sign_in")
@require_GET
def lockouts(request):
    from .selectors import locked_out_attempts, lockout_until

    rows = [{"attempt": a, "until": lockout_until(a)} for a in locked_out_attempts()]
    return render(request, "registration/lockouts.html", {
        "rows": rows, "limit": settings.AXES_FAILURE_LIMIT, "minutes": settings.LOGIN_LOCKOUT_MINUTES,
        "lockout_by": settings.LOGIN_LOCKOUT_BY})


@requires("accounts.unlock_sign_in")
@require_POST
def unlock(request, pk: int):
    from django.contrib import messages

    from .services import do_unlock_sign_in

    username = do_unlock_sign_in(attempt_id=pk)
    if username is None:
        messages.info(request, "That lockout had already ended.")
    else:
        messages.info(request, f"Unlocked the sign-in of {username or 'an unnamed attempt'}.")
    return redirect("lockouts")
