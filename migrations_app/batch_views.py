"""Pages of migration batches: build, preflight, sign-off. Each view validates its input and calls one service."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from portal.accounts.permissions import requires
from portal.exports import CSV_TYPE, XLSX_TYPE, csv_lines, download

from . import batch_exports, batch_rows, batch_run, batch_sync
from . import batch_selectors as bsel
from . import batch_services as bsvc
from . import selectors as sel
from .choices import BatchStatus
from .filtersets import DistributionListFilterSet
from .forms import BatchApproveForm, BatchForm, BatchUploadForm, RejectForm, option_labels
from .models import MigrationBatch
from .notifications import do_mark_read
from .services import MigrationRefused

# What a person may ask from the batch page's buttons; approval, rejection and scheduling have their own forms.
_MOVES = {"submit": BatchStatus.SUBMITTED, "withdraw": BatchStatus.DRAFT, "cancel": BatchStatus.CANCELLED}
_PAUSE = {"pause": True, "resume": False}
_LIVE = (BatchStatus.SCHEDULED, BatchStatus.RUNNING)


@requires("accounts.view_dl_migration")
@require_GET
def batch_list(request):
    return render(request, "migrations_app/batch_list.html", {"batches": bsel.batches()[:200]})


@requires("migrations_app.migrate_dl")
def batch_new(request):
    if request.method == "POST":
        form = BatchForm(request.POST)
        if form.is_valid():
            try:
                batch = bsvc.do_create_batch(name=form.cleaned_data["name"], options=form.options(),
                                             method=form.batch_method(),
                                             window_start=form.cleaned_data["window_start"],
                                             window_end=form.cleaned_data["window_end"], user=request.user,
                                             request=request)
            except MigrationRefused as exc:
                form.add_error(None, f"{exc} Nothing was created.")
            else:
                messages.info(request, f"Batch #{batch.pk} created: add lists from the inventory or a CSV.")
                return redirect(batch)
        return render(request, "migrations_app/batch_form.html", {"form": form}, status=400)
    form = BatchForm(initial={k: v for k, v in BatchForm.initial_from_settings().items() if k != "mail"})
    return render(request, "migrations_app/batch_form.html", {"form": form})


def _submit_blocker(batch: MigrationBatch) -> str:
    """Why a draft cannot be submitted yet ("" when it can): the page says so instead of a Submit button."""
    if batch.status != BatchStatus.DRAFT:
        return ""
    try:
        bsvc.check_ready_to_sign(batch)
    except MigrationRefused as exc:
        return str(exc)
    return ""


def _page(request, batch: MigrationBatch, *, status: int = 200, **extra):
    lists = bsel.batch_lists(batch)
    user = request.user
    own = batch.requested_by_id == user.pk or user.has_perm("jobs.cancel_any_job")
    context = {
        "batch": batch, "lists": lists, "counts": bsel.outcome_counts(lists),
        "facts": bsel.sign_off_facts(batch, lists),
        # The method is the batch's rule and each list's own (shown apart), not one of the shared options.
        "options": option_labels({k: v for k, v in (batch.options or {}).items() if k != "method"}),
        "summary": batch.preflight_summary or {},
        "can_build": own and user.has_perm("migrations_app.migrate_dl") and batch.status in
        (BatchStatus.DRAFT, BatchStatus.SUBMITTED, BatchStatus.APPROVED, BatchStatus.SCHEDULED),
        "can_preflight": user.has_perm("migrations_app.run_preflight") and batch.status in
        (BatchStatus.DRAFT, BatchStatus.SUBMITTED) and bool(lists),
        "own": own and user.has_perm("migrations_app.migrate_dl"),
        "can_decide": batch.status == BatchStatus.SUBMITTED and user.has_perm("migrations_app.approve_migration")
        and batch.requested_by_id != user.pk,
        "signable": bsel.signable(batch), "now": timezone.now(), "submit_blocker": _submit_blocker(batch),
        "sync_rounds": batch_sync.sync_rounds(batch) if batch.job_id else [],
        "upload_form": BatchUploadForm(), "edit_form": BatchForm(initial=BatchForm.initial_for(batch)),
        "approve_form": BatchApproveForm(initial={**BatchApproveForm.with_defaults().initial,
                                                  "plan_hash": batch.plan_hash}),
        "reject_form": RejectForm(),
        "live": batch.status in _LIVE or bool(batch.job_id and batch.job and batch.job.finished_at is None),
        "progress": batch_run.batch_progress(batch),
        "run_story": batch_run.run_story(batch) if batch.job_id else "",
        **extra,
    }
    return render(request, "migrations_app/batch_detail.html", context, status=status)


@requires("accounts.view_dl_migration")
@require_GET
def batch_detail(request, pk: int):
    return _page(request, get_object_or_404(MigrationBatch, pk=pk))


def _refused(request, pk: int, exc: Exception):
    messages.error(request, f"{exc}" + ("" if "Nothing" in str(exc) else " Nothing was changed."))
    return redirect("migrations_app:batch", pk=pk)


@requires("migrations_app.migrate_dl")
@require_POST
def batch_upload(request, pk: int):
    batch = get_object_or_404(MigrationBatch, pk=pk)
    form = BatchUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a CSV file to upload. Nothing was added.")
        return redirect(batch)
    try:
        values = batch_rows.read_csv(form.cleaned_data["file"].read())
        rows = bsvc.do_add_to_batch(batch=batch, values=values, user=request.user, source="csv", request=request)
    except batch_rows.CsvUnreadable as exc:
        messages.error(request, f"{exc} Nothing was added.")
        return redirect(batch)
    except bsvc.RowsRefused as exc:
        return _page(request, batch, status=400, refused_rows=exc.rows, refused_message=str(exc),
                     valid_rows=[r for r in exc.rows if r.ok])
    except (MigrationRefused, PermissionDenied) as exc:
        return _refused(request, pk, exc)
    messages.info(request, f"{len(rows)} list(s) added from the CSV. Run the batch preflight next.")
    return redirect(batch)


@requires("migrations_app.migrate_dl")
@require_POST
def batch_add(request, pk: int):
    """The CSV's valid rows, the others excluded by the person who read why (every row judged again)."""
    batch = get_object_or_404(MigrationBatch, pk=pk)
    addresses = [a for a in request.POST.getlist("address") if a.strip()][:batch_rows.MAX_ROWS]
    try:
        rows = bsvc.do_add_to_batch(batch=batch, values=[(0, a) for a in addresses], user=request.user,
                                    source="csv (rows with problems excluded)", request=request)
    except bsvc.RowsRefused as exc:
        return _page(request, batch, status=400, refused_rows=exc.rows, refused_message=str(exc),
                     valid_rows=[r for r in exc.rows if r.ok])
    except (MigrationRefused, PermissionDenied) as exc:
        return _refused(request, pk, exc)
    messages.info(request, f"{len(rows)} list(s) added; the rows with problems were left out.")
    return redirect(batch)


@requires("migrations_app.migrate_dl")
@require_POST
def batch_add_from_inventory(request):
    """The ticked rows, or every list the inventory's filters match (all pages, not just the visible one)."""
    try:
        batch = MigrationBatch.objects.get(pk=int(request.POST.get("batch", "")))
    except (ValueError, MigrationBatch.DoesNotExist):
        messages.error(request, "Choose the batch to add the lists to (or create one first). Nothing was added.")
        return redirect("migrations_app:home")
    lists = DistributionListFilterSet(data=request.POST, queryset=sel.distribution_lists()).qs
    if request.POST.get("scope") != "all":
        ids = [int(i) for i in request.POST.getlist("select") if i.isdigit()]
        if not ids:
            messages.error(request, "Tick the lists to add, or press 'Add all matching'. Nothing was added.")
            return redirect("migrations_app:home")
        lists = sel.distribution_lists().filter(pk__in=ids)
    values = [(0, mail) for mail in lists.order_by("name").values_list("mail", flat=True)[:batch_rows.MAX_ROWS]]
    try:
        rows = bsvc.do_add_to_batch(batch=batch, values=values, user=request.user, skip_refused=True,
                                    source="inventory", request=request)
    except (MigrationRefused, PermissionDenied) as exc:
        return _refused(request, batch.pk, exc)
    added = [r for r in rows if r.ok]
    left = [r for r in rows if not r.ok]
    messages.info(request, f"{len(added)} list(s) added to batch #{batch.pk}."
                  + (f" {len(left)} left out: " + "; ".join(f"{r.value} ({r.problem})" for r in left[:10])
                     + ("…" if len(left) > 10 else "") if left else ""))
    return redirect(batch)


@requires("migrations_app.migrate_dl")
@require_POST
def batch_remove(request, pk: int):
    batch = get_object_or_404(MigrationBatch, pk=pk)
    ids = [int(i) for i in request.POST.getlist("item") if i.isdigit()]
    try:
        removed = bsvc.do_remove_from_batch(batch=batch, list_ids=ids, user=request.user, request=request)
    except (MigrationRefused, PermissionDenied) as exc:
        return _refused(request, pk, exc)
    messages.info(request, f"{removed} list(s) removed." if removed else "Tick the lists to remove.")
    return redirect(batch)


@requires("migrations_app.migrate_dl")
@require_POST
def batch_edit(request, pk: int):
    batch = get_object_or_404(MigrationBatch, pk=pk)
    form = BatchForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Check the batch's name, window and options: "
                       + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()) + ". Nothing was changed.")
        return redirect(batch)
    try:
        bsvc.do_update_batch(batch=batch, name=form.cleaned_data["name"], options=form.options(),
                             method=form.batch_method(),
                             window_start=form.cleaned_data["window_start"],
                             window_end=form.cleaned_data["window_end"], user=request.user, request=request)
    except (MigrationRefused, PermissionDenied) as exc:
        return _refused(request, pk, exc)
    messages.info(request, "Batch saved.")
    return redirect(batch)


@requires("migrations_app.migrate_dl")
@require_POST
def batch_methods(request, pk: int):
    """The method chosen for each list in the list table (``method-<list id>``: recreate, in_place, or empty)."""
    batch = get_object_or_404(MigrationBatch, pk=pk)
    prefix = "method-"
    methods = {int(key[len(prefix):]): value for key, value in request.POST.items()
               if key.startswith(prefix) and key[len(prefix):].isdigit()}
    try:
        changed = bsvc.do_set_list_methods(batch=batch, methods=methods, user=request.user, request=request)
    except (MigrationRefused, PermissionDenied) as exc:
        return _refused(request, pk, exc)
    messages.info(request, f"The method of {changed} list(s) changed: run the batch preflight again." if changed
                  else "No method changed.")
    return redirect(batch)


@requires("migrations_app.run_preflight")
@require_POST
def batch_preflight(request, pk: int):
    batch = get_object_or_404(MigrationBatch, pk=pk)
    try:
        job = bsvc.do_start_batch_preflight(batch=batch, user=request.user, request=request)
    except (MigrationRefused, PermissionDenied) as exc:
        return _refused(request, pk, exc)
    messages.info(request, f"Batch preflight started (job #{job.pk}); each list's result appears here when it ends.")
    return redirect(batch)


@requires("migrations_app.migrate_dl")
@require_POST
def batch_move(request, pk: int, move: str):
    batch = get_object_or_404(MigrationBatch, pk=pk)
    if move not in _MOVES and move not in _PAUSE:
        return _refused(request, pk, MigrationRefused(f"There is no '{move[:40]}' for a batch."))
    try:
        if move in _PAUSE:
            batch = batch_run.do_pause_batch(batch=batch, user=request.user, paused=_PAUSE[move], request=request)
            messages.info(request, f"Batch #{pk} {'paused: no new list starts' if batch.paused else 'resumed'}.")
            return redirect(batch)
        batch = bsvc.do_transition_batch(batch=batch, to=_MOVES[move], user=request.user, request=request)
    except (MigrationRefused, PermissionDenied) as exc:
        return _refused(request, pk, exc)
    messages.info(request, f"Batch #{pk} is {batch.get_status_display().lower()}.")
    return redirect(batch)


@requires("migrations_app.migrate_dl")
@require_POST
def batch_schedule(request, pk: int):
    batch = get_object_or_404(MigrationBatch, pk=pk)
    when = request.POST.get("when", "now")
    if when not in ("now", "window"):
        return _refused(request, pk, MigrationRefused("Choose to start now or at the window's start."))
    try:
        batch = batch_run.do_schedule_batch(batch=batch, user=request.user, now_=when == "now", request=request)
    except (MigrationRefused, PermissionDenied) as exc:
        return _refused(request, pk, exc)
    messages.info(request, f"Batch #{pk} is {batch.get_status_display().lower()}"
                  + (": its lists start now, children first." if batch.status == BatchStatus.RUNNING
                     else f"; it starts at {batch.window_start:%Y-%m-%d %H:%M} UTC."))
    return redirect(batch)


@requires("accounts.view_dl_migration")
@require_GET
def batch_report_csv(request, pk: int):
    batch = get_object_or_404(MigrationBatch, pk=pk)
    # At most a few hundred lists: sent whole, like the workbook.
    return download("".join(csv_lines(bsel.REPORT_COLUMNS, bsel.run_report(batch))),
                    name=f"batch-{batch.pk}-report.csv", content_type=CSV_TYPE)


@requires("accounts.view_dl_migration")
@require_GET
def batch_report_xlsx(request, pk: int):
    batch = get_object_or_404(MigrationBatch, pk=pk)
    return download(batch_exports.xlsx_bytes(batch), name=f"batch-{batch.pk}-report.xlsx", content_type=XLSX_TYPE)


@requires("accounts.view_dl_migration")
@require_GET
def batch_summary_print(request, pk: int):
    """The batch on one printable page, for the change record: who signed what, when it ran, each list."""
    batch = get_object_or_404(MigrationBatch.objects.select_related("requested_by", "approved_by", "job"), pk=pk)
    rows = bsel.run_report(batch)
    return render(request, "migrations_app/batch_print.html", {
        "batch": batch, "facts": bsel.report_summary(batch, rows), "rows": rows, "now": timezone.now()})


@requires("migrations_app.approve_migration")
@require_POST
def batch_approve(request, pk: int):
    batch = get_object_or_404(MigrationBatch, pk=pk)
    form = BatchApproveForm(request.POST)
    if not form.is_valid():
        if "confirm" in form.errors:
            return _refused(request, pk, MigrationRefused("Tick the confirmation that you read every list and "
                                                          "warning."))
        return _refused(request, pk, MigrationRefused("The approval's validity must be a positive number of "
                                                      "hours."))
    hours = form.cleaned_data["valid_hours"]
    try:
        bsvc.do_approve_batch(batch=batch, user=request.user, signed_hash=form.cleaned_data["plan_hash"],
                              note=form.cleaned_data["note"], valid_for=timedelta(hours=hours) if hours else None,
                              request=request)
    except (MigrationRefused, PermissionDenied) as exc:
        return _refused(request, pk, exc)
    messages.info(request, f"Batch #{pk} approved.")
    return redirect(batch)


@requires("migrations_app.approve_migration")
@require_POST
def batch_reject(request, pk: int):
    batch = get_object_or_404(MigrationBatch, pk=pk)
    form = RejectForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        bsvc.do_reject_batch(batch=batch, user=request.user, reason=reason, request=request)
    except (MigrationRefused, PermissionDenied) as exc:
        return _refused(request, pk, exc)
    messages.info(request, f"Batch #{pk} rejected.")
    return redirect(batch)


@requires("accounts.view_dl_migration")
def notifications(request):
    if request.method == "POST":
        do_mark_read(user=request.user)
        return redirect("migrations_app:notifications")
    return render(request, "migrations_app/notifications.html",
                  {"notifications": list(bsel.notifications_of(user=request.user))})
