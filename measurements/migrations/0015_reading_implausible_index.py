"""A small partial index of implausible readings, built without blocking writes."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Index(AddIndexConcurrently):
    """CONCURRENTLY on PostgreSQL; a plain index elsewhere (the SQLite demo)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [
        ("measurements", "0014_reading_quality_flags"),
    ]

    operations = [
        Index(
            model_name="bloodpressurereading",
            index=models.Index(
                condition=models.Q(("quality_flags", 0), _negated=True),
                fields=["participant"],
                name="reading_implausible",
            ),
        ),
    ]
