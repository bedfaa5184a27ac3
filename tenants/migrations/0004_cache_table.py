"""The database cache's table, made by `migrate` itself (issue 18): with the default settings (no Redis)
a login answered 500 until `createcachetable` had also been run. With a Redis cache this does nothing."""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor) -> None:
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0003_user_settings")]
    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
