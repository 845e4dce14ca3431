from django.urls import path

from . import views

app_name = "diagnostics_app"
urlpatterns = [
    path("address-repair/", views.address_repair, name="address_repair"),
    path("mfa/", views.mfa, name="mfa"),
    path("mfa/users/<int:pk>/", views.mfa_user, name="mfa_user"),
    path("mfa/readiness/", views.mfa_readiness, name="mfa_readiness"),
    path("mfa/snapshot/", views.mfa_start_snapshot, name="mfa_start_snapshot"),
    path("writeback/", views.writeback, name="writeback"),
]
