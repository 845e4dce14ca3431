from django.shortcuts import render

from .permissions import requires
from .roles import ROLE_DESCRIPTIONS


@requires()
def home(request):
    """Landing page: any signed-in user, whatever their role, sees where they can go."""
    return render(request, "home.html", {"role_descriptions": ROLE_DESCRIPTIONS})
