"""PostgreSQL's prompt search index without fastupdate (see generation.search.POSTGRES_INDEX_OPTIONS)."""

from django.db import migrations


def fastupdate_off(apps, schema_editor):
    from generation.search import POSTGRES_INDEX, POSTGRES_INDEX_OPTIONS

    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"ALTER INDEX IF EXISTS {POSTGRES_INDEX} SET ({POSTGRES_INDEX_OPTIONS})")
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [POSTGRES_INDEX])
        if cursor.fetchone()[0]:
            cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [POSTGRES_INDEX])  # what waits already


def fastupdate_on(apps, schema_editor):
    from generation.search import POSTGRES_INDEX

    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f"ALTER INDEX IF EXISTS {POSTGRES_INDEX} SET (fastupdate = on)")


class Migration(migrations.Migration):
    dependencies = [("generation", "0014_output")]

    operations = [migrations.RunPython(fastupdate_off, fastupdate_on)]
