from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portal.accounts.permissions import requires
from portal.jobs.services import do_start_job

from .forms import FaultForm, SyncWizardForm
from .selectors import lab_state
from .services import do_set_lab_faults, do_set_lab_sync_wizard, lab_sync_wizard


def _lab_only():
    # Production has no lab: the page does not exist there.
    if not settings.LAB_MODE:
        raise Http404("the rehearsal lab runs only in lab mode")


@requires("accounts.manage_lab")
def home(request):
    _lab_only()
    form = FaultForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            do_set_lab_faults(user=request.user, request=request, **form.cleaned_data)
            messages.info(request, "Fault injection updated.")
            return redirect("lab:home")
    state = lab_state()
    wizard = None
    if state.cloud.running:
        try:
            wizard = SyncWizardForm(initial=lab_sync_wizard())
        except Exception:  # noqa: BLE001 - a lab not set up shows no wizard form, the page still opens
            wizard = None
    return render(request, "lab/home.html", {"state": state, "form": form, "wizard_form": wizard})


@requires("accounts.manage_lab")
@require_POST
def sync_wizard(request):
    _lab_only()
    form = SyncWizardForm(request.POST)
    if not form.is_valid():
        messages.warning(request, "The wizard settings are not valid: "
                         + "; ".join(" ".join(v) for v in form.errors.values()) + " Nothing was changed.")
        return redirect("lab:home")
    do_set_lab_sync_wizard(user=request.user, request=request, **form.cleaned_data)
    messages.info(request, "The lab sync server's wizard settings were applied (the next cycle uses them).")
    return redirect("lab:home")


@requires("accounts.manage_lab")
@require_POST
def run_sync(request):
    _lab_only()
    policy = "Initial" if request.POST.get("policy") == "Initial" else "Delta"
    job = do_start_job(kind="lab_sync_cycle", user=request.user, params={"policy": policy},
                       target=f"lab sync ({policy})", request=request)
    return redirect(job)
