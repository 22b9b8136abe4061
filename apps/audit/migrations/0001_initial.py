"""AuditLog, taken over from the compliance app with its table and rows.

The model enters this app's state only (the table `compliance_auditlog` already exists, created by
compliance 0001); its content type moves with it, so the permissions granted on it (and the
groups holding them) are kept.
"""

import django.core.serializers.json
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def content_type_move(apps, schema_editor, source, target):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if ContentType.objects.using(db).filter(app_label=target, model="auditlog").exists():
        return
    ContentType.objects.using(db).filter(app_label=source, model="auditlog").update(
        app_label=target
    )


def forwards(apps, schema_editor):
    content_type_move(apps, schema_editor, "compliance", "audit")


def backwards(apps, schema_editor):
    content_type_move(apps, schema_editor, "audit", "compliance")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("compliance", "0003_move_auditlog_to_audit"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditLog",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("event", models.CharField(db_index=True, max_length=80)),
                        ("actor_label", models.CharField(blank=True, max_length=200)),
                        (
                            "target_type",
                            models.CharField(blank=True, db_index=True, max_length=80),
                        ),
                        ("target_id", models.CharField(blank=True, db_index=True, max_length=80)),
                        (
                            "details",
                            models.JSONField(
                                default=dict,
                                encoder=django.core.serializers.json.DjangoJSONEncoder,
                            ),
                        ),
                        (
                            "created_at",
                            models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                        ),
                        (
                            "actor",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "compliance_auditlog",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [
                            models.Index(
                                fields=["target_type", "target_id", "created_at"],
                                name="compliance__target__e0b866_idx",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
