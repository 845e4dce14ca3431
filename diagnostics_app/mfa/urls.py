from django.urls import path

from . import views

urlpatterns = [
    path("mfa/", views.mfa, name="mfa"),
    path("mfa/users/<int:pk>/", views.mfa_user, name="mfa_user"),
    path("mfa/readiness/", views.mfa_readiness, name="mfa_readiness"),
    path("mfa/snapshot/", views.mfa_start_snapshot, name="mfa_start_snapshot"),
]
