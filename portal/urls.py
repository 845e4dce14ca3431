from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView

from portal.accounts import views as account_views
from portal.accounts.permissions import requires

urlpatterns = [
    path("", account_views.home, name="home"),
    path("login/", account_views.PortalLoginView.as_view(), name="login"),
    path("login/second-factor/", account_views.second_factor, name="login_second_factor"),
    path("login/microsoft/", account_views.entra_start, name="entra_start"),
    path("login/microsoft/callback/", account_views.entra_callback, name="entra_callback"),
    path("logout/", requires()(account_views.PortalLogoutView.as_view()), name="logout"),
    path("accounts/lockouts/", account_views.lockouts, name="lockouts"),
    path("accounts/lockouts/<int:pk>/unlock/", account_views.unlock, name="unlock"),
    path("jobs/", include("portal.jobs.urls")),
    path("audit/", include("portal.audit.urls")),
    path("directory/", include("portal.directory.urls")),
    path("lab/", include("portal.lab.urls")),
    path("dl/", include("migrations_app.urls")),
    path("diagnostics/", include("diagnostics_app.urls")),
    # One login page for the portal and the Django admin: throttled, second factor, local-account switch.
    path("admin/login/", login_not_required(RedirectView.as_view(url="/login/?next=/admin/")), name="admin_login"),
    path("admin/", admin.site.urls),
]

handler403 = "portal.accounts.views.permission_denied"
