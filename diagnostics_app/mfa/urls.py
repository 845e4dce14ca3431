from django.urls import path

from . import policy_views, views

urlpatterns = [
    path("mfa/", views.mfa, name="mfa"),
    path("mfa/users/<int:pk>/", views.mfa_user, name="mfa_user"),
    path("mfa/readiness/", views.mfa_readiness, name="mfa_readiness"),
    path("mfa/policies/", policy_views.mfa_policies, name="mfa_policies"),
    path("mfa/policies/readiness/", policy_views.mfa_policy_readiness, name="mfa_policy_readiness"),
    path("mfa/policies/<int:pk>/", policy_views.mfa_policy, name="mfa_policy"),
    path("mfa/snapshot/", views.mfa_start_snapshot, name="mfa_start_snapshot"),
]
