from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "portal.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate

        from portal import template_values
        from portal.security import restrict_sqlite_file  # importing it registers the deploy checks too

        from . import signals  # noqa: F401  (login/logout audit)
        from .services import do_sync_roles

        # Roles follow the code: every migrate brings the groups' permissions back to roles.py.
        post_migrate.connect(lambda **kwargs: do_sync_roles(), dispatch_uid="accounts.sync_roles", weak=False)
        connection_created.connect(restrict_sqlite_file, dispatch_uid="portal.restrict_sqlite_file")
        template_values.install()  # the portal's first app: every template's {{ }} writes through value_text
