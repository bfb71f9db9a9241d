from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION cohorts_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER cohorts_auditevent_append_only
    BEFORE UPDATE OR DELETE ON cohorts_auditevent
    FOR EACH ROW EXECUTE FUNCTION cohorts_auditevent_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS cohorts_auditevent_append_only ON cohorts_auditevent;
DROP FUNCTION IF EXISTS cohorts_auditevent_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("cohorts", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
