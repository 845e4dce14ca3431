from django.apps import AppConfig


class DiagnosticsAppConfig(AppConfig):
    name = "diagnostics_app"
    verbose_name = "Diagnostics"
