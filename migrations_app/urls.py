from django.urls import path

from . import views

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
    path("<uuid:guid>/", views.list_detail, name="list"),
]
