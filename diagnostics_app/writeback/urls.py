from django.urls import path

from . import views

urlpatterns = [
    path("writeback/", views.writeback, name="writeback"),
    path("writeback/plan/", views.writeback_start_plan, name="writeback_start_plan"),
    path("writeback/plans/<int:pk>/", views.writeback_plan, name="writeback_plan"),
    path("writeback/plans/<int:pk>/print/", views.writeback_print, name="writeback_print"),
    path("writeback/plans/<int:pk>/request-approval/", views.writeback_request_approval,
         name="writeback_request_approval"),
    path("writeback/plans/<int:pk>/approve/", views.writeback_approve, name="writeback_approve"),
    path("writeback/plans/<int:pk>/reject/", views.writeback_reject, name="writeback_reject"),
    path("writeback/plans/<int:pk>/runbook/", views.writeback_runbook, name="writeback_runbook"),
    path("writeback/plans/<int:pk>/runbook/<slug:step>/", views.writeback_confirm_step, name="writeback_confirm_step"),
    path("writeback/plans/<int:pk>/verify/", views.writeback_start_verify, name="writeback_start_verify"),
    path("writeback/plans/<int:pk>/cloud-sync/", views.writeback_cloud_sync, name="writeback_cloud_sync"),
]
