"""Pages of the DL migration area. Each view validates its input and calls one service."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_filters.views import FilterView
from django_tables2 import SingleTableMixin

from portal.accounts.permissions import requires
from portal.approvals.queue import approval_queue
from portal.approvals.views import decided, signed
from portal.audit.services import record_download
from portal.connectors import ad
from portal.connectors.registry import NotConfigured
from portal.directory.selectors import directory_object
from portal.exports import download
from portal.jobs.choices import JobStatus
from portal.jobs.selectors import log_lines_before

from . import selectors as sel
from . import services as svc
from .batch_selectors import editable_batches_of
from .choices import BackupKind, MigrationMethod, MigrationStatus
from .filtersets import DistributionListFilterSet, MigrationFilterSet
from .forms import AddressForm, ApproveForm, PreflightForm, RejectForm, RestoreForm, SettingsForm, option_labels
from .models import DistributionList, Migration
from .services import MigrationRefused
from .tables import DistributionListTable, MigrationTable


# -- inventory -------------------------------------------------------------------------------------
class InventoryView(SingleTableMixin, FilterView):
    required_permissions = ("accounts.view_dl_migration",)
    table_class = DistributionListTable
    filterset_class = DistributionListFilterSet
    template_name = "migrations_app/inventory.html"

    def get_queryset(self):
        return sel.distribution_lists()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["counts"] = sel.inventory_counts()
        context["last_inventory"] = sel.last_inventory_job()
        if self.request.user.has_perm("migrations_app.migrate_dl"):
            # Inside the table's container, so that it follows the filters htmx swaps in.
            context["table_footer"] = "migrations_app/_add_to_batch.html"
            context["my_batches"] = editable_batches_of(self.request.user)
            context["filter_params"] = [(k, v) for k, values in self.request.GET.lists() for v in values
                                        if k not in ("page", "per_page", "sort")]
        return context

    def get_table_kwargs(self):
        if self.request.user.has_perm("migrations_app.migrate_dl"):
            return {}
        return {"exclude": ("select",)}


@requires("migrations_app.run_preflight")
@require_POST
def start_inventory(request):
    job = svc.do_start_inventory(user=request.user, request=request)
    messages.info(request, f"Inventory started (job #{job.pk}); the table fills when it ends.")
    return redirect(job)


# -- one list --------------------------------------------------------------------------------------
@requires("accounts.view_dl_migration")
@require_GET
def list_detail(request, guid):
    dl = get_object_or_404(DistributionList, guid=guid)
    try:
        member_page = max(1, int(request.GET.get("members_page", "1")))
    except ValueError:
        member_page = 1
    members, members_error = None, ""
    try:
        members = directory_object(guid=str(dl.guid), member_page=member_page)
    except ad.NotFound:
        members_error = "The group is no longer in Active Directory under this GUID (deleted after migration?)."
    except (ad.ServerDown, NotConfigured, ad.AdError) as exc:
        members_error = f"Active Directory could not be read, so members are not shown: {exc}"
    preflight = sel.latest_preflight_job(dl.mail)
    return render(request, "migrations_app/list_detail.html", {
        "dl": dl, "members": members, "members_error": members_error,
        "children": sel.lists_by_dn(dl.child_lists), "parents": sel.lists_by_dn(dl.parent_lists),
        "dependencies": sorted((dl.dependencies or {}).items()),
        "migrations": sel.migrations_for_list(dl), "preflight": preflight,
        "checks": sel.checks_by_outcome(preflight.result or {}) if preflight and preflight.result else [],
    })


# -- preflight -------------------------------------------------------------------------------------
@requires("migrations_app.run_preflight")
def preflight_form(request):
    if request.method == "POST":
        form = PreflightForm(request.POST)
        if form.is_valid():
            try:
                job = svc.do_start_preflight(mail=form.cleaned_data["mail"], options=form.options(),
                                             user=request.user, request=request)
            except MigrationRefused as exc:
                form.add_error(None, f"{exc} Nothing was queued.")
            else:
                return redirect("migrations_app:preflight_report", job_id=job.pk)
        status = 400
    else:
        form = PreflightForm(initial=PreflightForm.initial_from_settings(request.GET.get("mail", "")[:400]))
        status = 200
    return render(request, "migrations_app/preflight_form.html",
                  {"form": form, "settings": sel.migration_settings()}, status=status)


@requires("accounts.view_dl_migration")
@require_GET
def preflight_report(request, job_id: int):
    job = sel.preflight_job(job_id)
    if job is None:
        raise Http404("no such preflight")
    report = job.result or {}
    mail = job.params.get("mail", "")
    options = job.params.get("options") or {}
    finished = not job.is_active
    ok = finished and job.status in (JobStatus.SUCCEEDED, JobStatus.WARNINGS) and report.get("ok")
    existing = sel.open_migration_for(mail) if finished else None
    return render(request, "migrations_app/preflight_report.html", {
        "job": job, "report": report, "mail": mail, "options": options, "option_labels": option_labels(options),
        "finished": finished, "ok": ok,
        "checks": sel.checks_by_outcome(report), "plan": sel.migration_plan(report=report, options=options)
        if ok else [], "settings": sel.migration_settings(), "existing": existing,
        "dl": DistributionList.objects.filter(mail__iexact=mail).first() if mail else None,
    })


@requires("migrations_app.migrate_dl")
@require_POST
def migrate(request):
    try:
        job = sel.preflight_job(int(request.POST.get("preflight", "")))
    except ValueError:
        job = None
    if job is None:
        messages.error(request, "Start from a preflight: the confirm button on its report requests the migration.")
        return redirect("migrations_app:preflight")
    try:
        migration = svc.do_request_migration(mail=job.params.get("mail", ""), options=job.params.get("options"),
                                             user=request.user, request=request)
    except MigrationRefused as exc:
        messages.error(request, f"{exc} Nothing was queued.")
        return redirect("migrations_app:preflight_report", job_id=job.pk)
    if migration.status == MigrationStatus.AWAITING_APPROVAL:
        messages.info(request, f"Migration #{migration.pk} of {migration.mail} waits for an Approver's sign-off.")
    else:
        messages.info(request, f"Migration #{migration.pk} of {migration.mail} is queued.")
    return redirect("migrations_app:migration", pk=migration.pk)


# -- migrations ------------------------------------------------------------------------------------
class MigrationListView(SingleTableMixin, FilterView):
    required_permissions = ("accounts.view_dl_migration",)
    table_class = MigrationTable
    filterset_class = MigrationFilterSet
    template_name = "migrations_app/migration_list.html"

    def get_queryset(self):
        return sel.migrations_for_table()


@requires("accounts.view_dl_migration")
@require_GET
def migration_detail(request, pk: int):
    migration = get_object_or_404(sel.migrations_for_table(), pk=pk)
    user = request.user
    awaiting = migration.status == MigrationStatus.AWAITING_APPROVAL
    backups = list(migration.backups.order_by("kind").only("kind", "created_at", "migration_id"))
    preflight = migration.preflight or {}
    jobs = sel.jobs_of_migration(migration)
    # The page follows whichever of its jobs runs now: the migration, or an address change, a restore…
    current = next((j for j in jobs if j.is_active), None)
    latest_after = next((j for j in jobs if j.kind != svc.KIND_MIGRATE), None)
    # The last lines of the job running now (or of the last one), so the page shows the log as it grows.
    lines_of = current or latest_after or migration.job
    return render(request, "migrations_app/migration_detail.html", {
        "migration": migration, "job": migration.job, "report": migration.report or {},
        "live_job": current, "latest_after": latest_after, "activity": sel.migration_activity(migration, jobs),
        "lines_of": lines_of, "recent_lines": log_lines_before(job=lines_of, limit=8).lines if lines_of else [],
        "checks": sel.checks_by_outcome(preflight),
        "plan": sel.migration_plan(report=preflight, options=migration.options or {}) if preflight else [],
        "preflight_job_id": preflight.get("job_id"),
        "backups": backups, "backup_kinds": dict(BackupKind.choices),
        "can_approve": awaiting and user.has_perm("migrations_app.approve_migration")
        and migration.requested_by_id != user.pk,
        "own_request": awaiting and migration.requested_by_id == user.pk,
        "can_change": migration.is_done and user.has_perm("migrations_app.change_migrated_dl")
        and migration.method == MigrationMethod.RECREATE,
        "can_restore": migration.is_done and bool(backups) and user.has_perm("migrations_app.restore_dl"),
        "address_form": AddressForm(), "reject_form": RejectForm(), "approve_form": ApproveForm.with_defaults(),
        "restore_form": RestoreForm(),
        "take_back_preview": sel.latest_take_back_preview(jobs) if migration.method == MigrationMethod.IN_PLACE
        else None,
        "options": option_labels(migration.options),
        "dl": migration.distribution_list,
    })


def _migration_action(request, pk: int, action, done: str):
    migration = get_object_or_404(Migration, pk=pk)
    try:
        result = action(migration)
    except MigrationRefused as exc:
        messages.error(request, f"{exc} Nothing was changed.")
        return redirect("migrations_app:migration", pk=pk)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
        return redirect("migrations_app:migration", pk=pk)
    messages.info(request, done.format(pk=pk, job=getattr(result, "pk", "")))
    return redirect("migrations_app:migration", pk=pk)


@requires("migrations_app.approve_migration")
@require_POST
def approve(request, pk: int):
    migration, form = get_object_or_404(Migration, pk=pk), ApproveForm(request.POST)
    return signed(request, obj=migration, form=form, refused=(svc.MigrationRefused,),
                  done=f"Migration #{pk} approved and queued.", decide=lambda: svc.do_approve_migration(
                      migration=migration, user=request.user, request=request, note=form.cleaned_data["note"],
                      valid_for=form.valid_for))


@requires("migrations_app.approve_migration")
@require_POST
def reject(request, pk: int):
    migration, form = get_object_or_404(Migration, pk=pk), RejectForm(request.POST)
    return decided(request, obj=migration, refused=(svc.MigrationRefused,), done=f"Migration #{pk} rejected.",
                   decide=lambda: svc.do_reject_migration(migration=migration, user=request.user,
                                                          reason=form.reason_given, request=request))


@requires("accounts.view_dl_migration")
@require_GET
def migration_now(request, pk: int):
    """The "now" panel, loaded after the page (it asks both directories)."""
    migration = get_object_or_404(Migration, pk=pk)
    return render(request, "migrations_app/_now.html", {"facts": sel.migration_now(migration)})


@requires("migrations_app.migrate_dl")
@require_POST
def withdraw(request, pk: int):
    return _migration_action(request, pk, lambda m: svc.do_withdraw_migration(
        migration=m, user=request.user, request=request), "Your request #{pk} is withdrawn; nothing was changed.")


@requires("migrations_app.approve_migration")
@require_GET
def approvals(request):
    # One queue for everything an Approver signs (portal/approvals/queue.py, which the navigation counts too):
    # DL migrations and batches, Address repair fixes, writeback rename plans and MFA wave groups.
    queue = approval_queue(user=request.user)
    return render(request, "migrations_app/approvals.html",
                  {"pending": queue.migrations, "batches": queue.batches, "fixes": queue.address_fixes,
                   "writeback_plans": queue.writeback_plans, "wave_groups": queue.wave_groups,
                   "nothing_waits": queue.count() == 0})


@requires("migrations_app.change_migrated_dl")
@require_POST
def enable_hybrid(request, pk: int):
    return _migration_action(request, pk, lambda m: svc.do_start_enable_hybrid_mail_flow(
        migration=m, user=request.user, request=request), "Enabling hybrid mail flow (job #{job}).")


@requires("migrations_app.change_migrated_dl")
@require_POST
def update_address(request, pk: int):
    form = AddressForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Tick the confirmation to change the address. Nothing was changed." if "confirm"
                       in form.errors and "new_address" not in form.errors
                       else "Give the new primary SMTP address. Nothing was changed.")
        return redirect("migrations_app:migration", pk=pk)
    return _migration_action(request, pk, lambda m: svc.do_start_update_address(
        migration=m, new_address=form.cleaned_data["new_address"], new_alias=form.cleaned_data["new_alias"],
        user=request.user, request=request), "Changing the address (job #{job}).")


@requires("migrations_app.restore_dl")
@require_POST
def restore(request, pk: int):
    migration = get_object_or_404(Migration, pk=pk)
    if not RestoreForm(request.POST).matches(migration.mail):
        messages.error(request, f"To restore, type the list's address ({migration.mail}) in the confirmation field. "
                                "Nothing was changed.")
        return redirect("migrations_app:migration", pk=pk)
    return _migration_action(request, pk, lambda m: svc.do_start_restore(
        migration=m, user=request.user, request=request), "Restore started (job #{job}).")


@requires("migrations_app.restore_dl")
@require_POST
def take_back_preview(request, pk: int):
    return _migration_action(request, pk, lambda m: svc.do_start_take_back_preview(
        migration=m, user=request.user, request=request), "Reading what the take-back would overwrite (job #{job}).")


@requires("accounts.view_dl_migration")
@require_GET
def backup_download(request, pk: int, kind: str):
    migration = get_object_or_404(Migration, pk=pk)
    backup = sel.backup_of(migration, kind)
    if backup is None:
        raise Http404("no such backup")
    record_download(user=request.user, what="backup", target=f"dl:{migration.mail}", request=request,
                    migration=migration.pk, kind=backup.kind)
    body = json.dumps({"migration": migration.pk, "mail": migration.mail, "kind": backup.kind,
                       "created_at": backup.created_at.isoformat(), "data": backup.data}, indent=2)
    return download(body, name=f"migration-{migration.pk}-{backup.kind}.json", content_type="application/json")


# -- settings --------------------------------------------------------------------------------------
@requires("migrations_app.manage_migration_settings")
def settings_page(request):
    current = sel.migration_settings()
    form = SettingsForm(request.POST or None, initial={
        "require_approval_for_single": current.require_approval_for_single,
        "default_hybrid_mail_flow": current.default_hybrid_mail_flow,
        "default_keep_original": current.default_keep_original})
    if request.method == "POST" and form.is_valid():
        saved = svc.do_update_settings(user=request.user, request=request, **form.cleaned_data)
        if saved.require_approval_for_single and not form.cleaned_data["require_approval_for_single"]:
            messages.warning(request, "Settings saved. Turning approvals off needs a second Administrator: it "
                                      "takes effect once another Administrator confirms it on this page.")
        else:
            messages.info(request, "Migration settings saved.")
        return redirect(reverse("migrations_app:settings"))
    pending_by = current.four_eyes_off_requested_by
    return render(request, "migrations_app/settings.html", {
        "form": form, "current": current, "pending_by": pending_by,
        "can_confirm": pending_by is not None and pending_by.pk != request.user.pk})


@requires("migrations_app.manage_migration_settings")
@require_POST
def four_eyes_off(request, decision: str):
    try:
        if decision == "confirm":
            svc.do_confirm_four_eyes_off(user=request.user, request=request)
            messages.info(request, "Approvals are off for single migrations; both names are in the audit log.")
        else:
            svc.do_withdraw_four_eyes_off(user=request.user, request=request)
            messages.info(request, "The request to turn approvals off was withdrawn; approvals stay on.")
    except MigrationRefused as exc:
        messages.error(request, f"{exc} Nothing was changed.")
    return redirect(reverse("migrations_app:settings"))
