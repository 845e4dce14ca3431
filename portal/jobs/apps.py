from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "portal.jobs"
    label = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from . import connectivity

        # The portal's own dependencies first, then each connector's (their order in the report).
        connectivity.load_connector_checks()

        # Each app declares its JobRunner subclasses in jobs.py; importing them registers their kinds.
        autodiscover_modules("jobs")
        from importlib import import_module

        from django.conf import settings

        for module in settings.JOB_EXTRA_MODULES:
            import_module(module)
