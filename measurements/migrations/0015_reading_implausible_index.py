"""A small partial index of implausible readings, built without blocking writes."""

from django.db import migrations, models

from core.migration_ops import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False
    dependencies = [
        ("measurements", "0014_reading_quality_flags"),
    ]

    operations = [
        AddIndexOnline(
            model_name="bloodpressurereading",
            index=models.Index(
                condition=models.Q(("quality_flags", 0), _negated=True),
                fields=["participant"],
                name="reading_implausible",
            ),
        ),
    ]
