from django.db import migrations


def install(apps, schema_editor):
    from portal.audit.db import install as do_install

    do_install(schema_editor)


def uninstall(apps, schema_editor):
    from portal.audit.db import uninstall as do_uninstall

    do_uninstall(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(install, uninstall)]
