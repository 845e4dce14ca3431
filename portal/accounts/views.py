from django.shortcuts import render

from .permissions import requires
from .roles import ROLE_DESCRIPTIONS


@requires()
def home(request):
    """Landing page: any signed-in user sees where they can go and, with a role, their dashboard."""
    from portal.jobs.selectors import dashboard

    board = dashboard(user=request.user) if request.user.has_perm("jobs.view_job") else None
    return render(request, "home.html", {"role_descriptions": ROLE_DESCRIPTIONS, "board": board})


def permission_denied(request, exception=None):
    """handler403: a PermissionDenied a view or service raised (the middleware's refusals render
    through the same page) is audited and explained."""
    from .middleware import forbidden

    return forbidden(request, missing=[], reason=str(exception or ""))
