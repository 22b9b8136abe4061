"""Every field named like personal data is either erased by `member_erase` (listed in
apps/compliance/personal_data.py) or declared not personal with a reason."""

from __future__ import annotations

from django.apps import apps

from apps.compliance.personal_data import NOT_PERSONAL, PERSONAL_FIELDS, PERSONAL_NAME


def _fields_named_like_personal_data() -> set[str]:
    found = set()
    for model in apps.get_models():
        for field in model._meta.get_fields():
            concrete = getattr(field, "concrete", False) and not field.is_relation
            if concrete and PERSONAL_NAME.search(field.name):
                found.add(f"{model._meta.label_lower}.{field.name}")
    return found


def test_every_personal_looking_field_is_listed():
    listed = {f"{model}.{field}" for model, fields in PERSONAL_FIELDS.items() for field in fields}
    unlisted = sorted(_fields_named_like_personal_data() - listed - set(NOT_PERSONAL))
    assert unlisted == [], (
        "fields named like personal data without an entry in apps/compliance/personal_data.py: "
        + ", ".join(unlisted)
    )


def test_the_registry_names_real_fields():
    for model_label, fields in PERSONAL_FIELDS.items():
        model = apps.get_model(model_label)
        for field in fields:
            model._meta.get_field(field)
    for dotted in NOT_PERSONAL:
        model_label, field = dotted.rsplit(".", 1)
        apps.get_model(model_label)._meta.get_field(field)


def test_the_scan_catches_a_new_personal_field():
    assert PERSONAL_NAME.search("phone_number")
    assert PERSONAL_NAME.search("iban")
    assert PERSONAL_NAME.search("home_latitude")
    assert not PERSONAL_NAME.search("capacity_w")
