"""AuditLog moves to the `audit` app: removed from this app's state only; the table and its rows
stay and are taken over by audit 0001."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0002_erasurerequest"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditLog")],
            database_operations=[],
        ),
    ]
