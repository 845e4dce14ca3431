from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal.accounts import views as account_views
from portal.accounts.permissions import requires

urlpatterns = [
    path("", account_views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", requires()(auth_views.LogoutView.as_view()), name="logout"),
    path("jobs/", include("portal.jobs.urls")),
    path("audit/", include("portal.audit.urls")),
    path("directory/", include("portal.directory.urls")),
    path("lab/", include("portal.lab.urls")),
    path("dl/", include("migrations_app.urls")),
    path("diagnostics/", include("diagnostics_app.urls")),
    path("admin/", admin.site.urls),
]

handler403 = "portal.accounts.views.permission_denied"
