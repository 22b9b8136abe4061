"""The statutes' decision types: an ordinary resolution (simple majority, no quorum) and a
change of the statutes (two thirds of yes + no, half the members taking part)."""

from django.db import migrations

TYPES = [
    {
        "code": "ordinary",
        "name": "Ordinary resolution",
        "quorum_percent": 0,
        "majority_numerator": 1,
        "majority_denominator": 2,
        "majority_strict": True,
    },
    {
        "code": "statutes",
        "name": "Change of the statutes",
        "quorum_percent": 50,
        "majority_numerator": 2,
        "majority_denominator": 3,
        "majority_strict": False,
    },
]


def add_types(apps, schema_editor):
    ProposalType = apps.get_model("governance", "ProposalType")
    for row in TYPES:
        ProposalType.objects.update_or_create(code=row["code"], defaults=row)


def remove_types(apps, schema_editor):
    apps.get_model("governance", "ProposalType").objects.filter(
        code__in=[t["code"] for t in TYPES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("governance", "0001_initial")]
    operations = [migrations.RunPython(add_types, remove_types)]
