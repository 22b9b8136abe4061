"""Create the groups staff / member / auditor with their permissions.

The policy lives in apps.accounts.roles and is applied by apps.accounts.services.roles_sync, which
also runs on every post_migrate so that permissions of apps migrated later are granted as well.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    from apps.accounts.services import roles_sync

    roles_sync(using=schema_editor.connection.alias)


def backwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(
        name__in=["staff", "member", "auditor"]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
