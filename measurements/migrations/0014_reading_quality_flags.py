"""Plausibility flags on readings (measurements.quality).

A column with a constant default is added without rewriting the table (PostgreSQL ≥ 11); existing rows
read 0 until `manage.py readings_quality_backfill` computes them in batches. No CHECK constraint (a
PositiveSmallIntegerField would validate it over the whole table under an exclusive lock).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("measurements", "0013_reading_time_id_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="bloodpressurereading",
            name="quality_flags",
            field=models.SmallIntegerField(
                db_default=0, default=0, help_text="Plausibility rules broken (bitmask); 0 = plausible."
            ),
        ),
    ]
