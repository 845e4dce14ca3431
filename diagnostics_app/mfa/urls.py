from django.urls import path

from . import policy_views, views, wave_views

urlpatterns = [
    path("mfa/", views.mfa, name="mfa"),
    path("mfa/users/<int:pk>/", views.mfa_user, name="mfa_user"),
    path("mfa/readiness/", views.mfa_readiness, name="mfa_readiness"),
    path("mfa/policies/", policy_views.mfa_policies, name="mfa_policies"),
    path("mfa/policies/readiness/", policy_views.mfa_policy_readiness, name="mfa_policy_readiness"),
    path("mfa/policies/<int:pk>/", policy_views.mfa_policy, name="mfa_policy"),
    path("mfa/waves/request/", wave_views.mfa_request_wave_groups, name="mfa_request_wave_groups"),
    path("mfa/waves/<int:pk>/", wave_views.mfa_wave_groups, name="mfa_wave_groups"),
    path("mfa/waves/<int:pk>/approve/", wave_views.mfa_approve_wave_groups, name="mfa_approve_wave_groups"),
    path("mfa/waves/<int:pk>/reject/", wave_views.mfa_reject_wave_groups, name="mfa_reject_wave_groups"),
    path("mfa/snapshot/", views.mfa_start_snapshot, name="mfa_start_snapshot"),
]
