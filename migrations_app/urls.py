from django.urls import path

from . import batch_views, views

app_name = "migrations_app"
urlpatterns = [
    path("", views.InventoryView.as_view(), name="home"),
    path("inventory/", views.start_inventory, name="start_inventory"),
    path("preflight/", views.preflight_form, name="preflight"),
    path("preflight/<int:job_id>/", views.preflight_report, name="preflight_report"),
    path("migrate/", views.migrate, name="migrate"),
    path("migrations/", views.MigrationListView.as_view(), name="migrations"),
    path("migrations/<int:pk>/", views.migration_detail, name="migration"),
    path("migrations/<int:pk>/approve/", views.approve, name="approve"),
    path("migrations/<int:pk>/reject/", views.reject, name="reject"),
    path("migrations/<int:pk>/withdraw/", views.withdraw, name="withdraw"),
    path("migrations/<int:pk>/now/", views.migration_now, name="migration_now"),
    path("approvals/", views.approvals, name="approvals"),
    path("migrations/<int:pk>/hybrid-mail-flow/", views.enable_hybrid, name="enable_hybrid"),
    path("migrations/<int:pk>/address/", views.update_address, name="update_address"),
    path("migrations/<int:pk>/restore/", views.restore, name="restore"),
    path("migrations/<int:pk>/backup/<str:kind>.json", views.backup_download, name="backup"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/four-eyes-off/<str:decision>/", views.four_eyes_off, name="four_eyes_off"),
    path("batches/", batch_views.batch_list, name="batches"),
    path("batches/new/", batch_views.batch_new, name="batch_new"),
    path("batches/from-inventory/", batch_views.batch_add_from_inventory, name="batch_from_inventory"),
    path("batches/<int:pk>/", batch_views.batch_detail, name="batch"),
    path("batches/<int:pk>/upload/", batch_views.batch_upload, name="batch_upload"),
    path("batches/<int:pk>/add/", batch_views.batch_add, name="batch_add"),
    path("batches/<int:pk>/remove/", batch_views.batch_remove, name="batch_remove"),
    path("batches/<int:pk>/edit/", batch_views.batch_edit, name="batch_edit"),
    path("batches/<int:pk>/preflight/", batch_views.batch_preflight, name="batch_preflight"),
    path("batches/<int:pk>/approve/", batch_views.batch_approve, name="batch_approve"),
    path("batches/<int:pk>/reject/", batch_views.batch_reject, name="batch_reject"),
    path("batches/<int:pk>/<str:move>/", batch_views.batch_move, name="batch_move"),
    path("notifications/", batch_views.notifications, name="notifications"),
    path("<uuid:guid>/", views.list_detail, name="list"),
]
