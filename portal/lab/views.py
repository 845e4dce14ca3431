from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portal.accounts.permissions import requires
from portal.jobs.services import do_start_job

from .forms import FaultForm
from .selectors import lab_state
from .services import do_set_lab_faults


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
    return render(request, "lab/home.html", {"state": lab_state(), "form": form})


@requires("accounts.manage_lab")
@require_POST
def run_sync(request):
    _lab_only()
    policy = "Initial" if request.POST.get("policy") == "Initial" else "Delta"
    job = do_start_job(kind="lab_sync_cycle", user=request.user, params={"policy": policy},
                       target=f"lab sync ({policy})", request=request)
    return redirect(job)
