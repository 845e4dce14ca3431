from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from .roles import ROLE_PERMISSIONS

# The four areas, in the order people reach for them; `built` False shows an honest placeholder.
AREAS = [
    ("DL migration", "migrations_app:home", "accounts.view_dl_migration"),
    ("Address repair", "diagnostics_app:address_repair", "accounts.view_address_repair"),
    ("MFA registration", "diagnostics_app:mfa", "accounts.view_mfa_report"),
    ("Writeback rename", "diagnostics_app:writeback", "accounts.view_writeback_plan"),
]
# Areas whose pages are still a placeholder: the navigation says so before anyone clicks.
NOT_BUILT: set[str] = set()
TOOLS = [
    ("Directory", "directory:search", "accounts.view_directory"),
    ("Jobs", "jobs:list", "jobs.view_job"),
    ("Audit", "audit:list", "audit.view_auditevent"),
    ("Sign-in lockouts", "lockouts", "accounts.unlock_sign_in"),
    ("Lab", "lab:home", "accounts.manage_lab"),
]


def navigation(request):
    # Context processors run at every render with the request, and a table renders a template per cell
    # (TemplateColumn): without this, a 100-row page asked for the roles and the counts 100 times.
    cached = getattr(request, "_navigation_context", None)
    if cached is not None:
        return cached
    context = _navigation(request)
    if request is not None:
        request._navigation_context = context
    return context


def _navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    path = request.path

    def items(entries):
        out = []
        for label, url_name, perm in entries:
            if user.has_perm(perm) and (url_name != "lab:home" or settings.LAB_MODE):
                url = reverse(url_name)
                out.append({"label": label, "url": url, "active": path.startswith(url),
                            "not_built": url_name in NOT_BUILT})
        return out

    roles = [g.name for g in user.groups.all() if g.name in ROLE_PERMISSIONS]
    context = {"nav_areas": items(AREAS), "nav_tools": items(TOOLS), "user_roles": roles}
    if user.has_perm("migrations_app.approve_migration"):
        from portal.approvals.queue import approval_queue

        # the count of the very lists the Pending approvals page shows (portal/approvals/queue.py)
        url = reverse("migrations_app:approvals")
        context["nav_approvals"] = {"url": url, "count": approval_queue(user=user).count(),
                                    "active": path.startswith(url)}
    if user.has_perm("accounts.view_dl_migration"):
        from migrations_app.batch_selectors import unread_notifications

        url = reverse("migrations_app:notifications")
        context["nav_notifications"] = {"url": url, "count": unread_notifications(user=user),
                                        "active": path.startswith(url)}
    return context
