from __future__ import annotations

from functools import partial

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.functional import SimpleLazyObject

from .selectors import access_of

# The four areas, in the order people reach for them; `built` False shows an honest placeholder.
AREAS = [
    ("DL migration", "migrations_app:home", "accounts.view_dl_migration"),
    ("Address repair", "diagnostics_app:address_repair", "accounts.view_address_repair"),
    ("MFA registration", "diagnostics_app:mfa", "accounts.view_mfa_report"),
    ("Writeback rename", "diagnostics_app:writeback", "accounts.view_writeback_plan"),
]
# One line per area for a first-time visitor (home page tiles, the diagnostics index), and what each
# permission lets one do there ("you can …"), so a role sees why a button is or is not on a page.
AREA_SUMMARIES = {
    "migrations_app:home": "Move synced distribution lists to Exchange Online: inventory, preflight, single "
                           "migrations and approved batches.",
    "diagnostics_app:address_repair": "Why a mail or proxyAddresses change does not reach the cloud: scan, "
                                      "explain, plan and approve fixes.",
    "diagnostics_app:mfa": "Who can really satisfy MFA, registrations started but never finished, readiness "
                           "for a policy roll-out.",
    "diagnostics_app:writeback": "Switch group writeback to cloud display names without deleting groups: "
                                 "plan, approval, runbook, verification.",
}
AREA_ACTIONS = {
    "diagnostics_app:address_repair": [
        ("accounts.view_address_repair", "read the findings and the ProxyCalc explainer"),
        ("diagnostics_app.run_address_scan", "run a scan"),
        ("diagnostics_app.plan_address_fix", "plan a fix"),
        ("diagnostics_app.approve_address_fix", "approve or reject someone else's fix"),
    ],
    "diagnostics_app:mfa": [
        ("accounts.view_mfa_report", "read the registration report and the policy readiness"),
        ("diagnostics_app.run_mfa_snapshot", "take a snapshot"),
        ("diagnostics_app.request_mfa_wave_groups", "request roll-out wave groups"),
        ("diagnostics_app.approve_mfa_wave_groups", "approve or reject someone else's wave groups"),
    ],
    "diagnostics_app:writeback": [
        ("accounts.view_writeback_plan", "read the plans and their runbook"),
        ("diagnostics_app.run_writeback_plan", "make a plan and verify it"),
        ("diagnostics_app.approve_writeback_plan", "approve or reject someone else's plan"),
        ("diagnostics_app.confirm_writeback_step", "confirm runbook steps"),
    ],
}
# Areas whose pages are still a placeholder: the navigation says so before anyone clicks.
NOT_BUILT: set[str] = set()
TOOLS = [
    ("Directory", "directory:search", "accounts.view_directory"),
    ("Jobs", "jobs:list", "jobs.view_job"),
    ("Audit", "audit:list", "audit.view_auditevent"),
    ("Sign-in lockouts", "lockouts", "accounts.unlock_sign_in"),
    ("Lab", "lab:home", "accounts.manage_lab"),
]


# What navigation() puts in every template's context.
NAVIGATION_KEYS = ("nav_areas", "nav_tools", "user_roles", "nav_approvals", "nav_notifications")


def navigation(request):
    """The navigation's entries, worked out when a template first reads one of them: a fragment (the live log's
    poll, every second per reader) reads none, and would otherwise pay the role and permission lookups and the
    approval and notification counts on every request. Once per request: a table renders a template per cell
    (TemplateColumn), each with the context processors."""
    cached = getattr(request, "_navigation_context", None)
    if cached is not None:
        return cached
    computed = SimpleLazyObject(lambda: _navigation(request))
    context = {key: SimpleLazyObject(partial(_entry, computed, key)) for key in NAVIGATION_KEYS}
    if request is not None:
        request._navigation_context = context
    return context


def _entry(computed, key: str):
    # What a template saw when the entry was not there (signed out; no approver): nothing to show or loop over.
    return computed.get(key, [] if key in ("nav_areas", "nav_tools", "user_roles") else None)


_URLS: dict[tuple, str] = {}


def _url(name: str) -> str:
    """``reverse(name)`` of an entry (no arguments), worked out once per URL configuration and script prefix: every
    page asks for a dozen of them."""
    key = (get_urlconf(), get_script_prefix(), name)
    url = _URLS.get(key)
    if url is None:
        url = _URLS[key] = reverse(name)
    return url


def nav_items(entries, *, user, path: str = "") -> list[dict]:
    """The entries `user` may open (deny by default: the permission decides), with what a page shows of them."""
    out = []
    for label, url_name, perm in entries:
        if user.has_perm(perm) and (url_name != "lab:home" or settings.LAB_MODE):
            url = _url(url_name)
            out.append({"label": label, "url": url, "url_name": url_name, "active": path.startswith(url),
                        "not_built": url_name in NOT_BUILT, "summary": AREA_SUMMARIES.get(url_name, ""),
                        "actions": [text for needed, text in AREA_ACTIONS.get(url_name, []) if user.has_perm(needed)]})
    return out


def _navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    path = request.path
    roles = list(access_of(user).roles)
    context = {"nav_areas": nav_items(AREAS, user=user, path=path), "nav_tools": nav_items(TOOLS, user=user, path=path),
               "user_roles": roles}
    if user.has_perm("migrations_app.approve_migration"):
        from portal.approvals.queue import approval_queue

        # the count of the very lists the Pending approvals page shows (portal/approvals/queue.py)
        url = _url("migrations_app:approvals")
        context["nav_approvals"] = {"url": url, "count": approval_queue(user=user).count(),
                                    "active": path.startswith(url)}
    if user.has_perm("accounts.view_dl_migration"):
        from migrations_app.batch_selectors import unread_notifications

        url = _url("migrations_app:notifications")
        context["nav_notifications"] = {"url": url, "count": unread_notifications(user=user),
                                        "active": path.startswith(url)}
    return context
