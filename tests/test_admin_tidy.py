"""A tidy admin, checked over every registered ModelAdmin (admin.site._registry), so a new model
cannot bring back what a new staff member tripped over: two sections with the same label,
plurals such as "Raw batchs", acronyms such as "Dr events", long time-bearing lists without a
date drill-down or filter, and foreign keys rendered as a select of every row in the table."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.widgets import (
    AutocompleteSelect,
    AutocompleteSelectMultiple,
    FilteredSelectMultiple,
    ForeignKeyRawIdWidget,
    ManyToManyRawIdWidget,
    RelatedFieldWidgetWrapper,
)
from django.core import checks
from django.db import models
from django.forms import ModelChoiceField
from django.test import RequestFactory

from apps.accounts.models import User
from apps.accounts.policy import Role

TIME_FIELDS = (models.DateField, models.DateTimeField)
# FilteredSelectMultiple (filter_horizontal, e.g. a group's permissions) is searchable too.
LOOKUP_WIDGETS = (AutocompleteSelect, AutocompleteSelectMultiple, ForeignKeyRawIdWidget,
                  ManyToManyRawIdWidget, FilteredSelectMultiple)  # fmt: skip


def _registered():
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def test_every_admin_section_has_its_own_label():
    sections = {model._meta.app_label for model, _ in _registered()}
    labels = Counter(str(apps.get_app_config(label).verbose_name).casefold() for label in sections)
    assert [label for label, n in labels.items() if n > 1] == []
    unnamed = [
        model._meta.app_label
        for model, _ in _registered()
        if "verbose_name" not in type(apps.get_app_config(model._meta.app_label)).__dict__
    ]
    assert unnamed == [], "give these AppConfigs a verbose_name: " + ", ".join(set(unnamed))


def _naive_plural_wrong(singular: str) -> bool:
    return bool(re.search(r"(s|x|z|ch|sh|[^aeiou]y)$", singular))


def test_verbose_names_are_written_not_guessed():
    wrong = []
    for model, _ in _registered():
        opts = model._meta
        declared = opts.original_attrs
        name = model.__name__
        if re.search(r"[A-Z]{2}", name) and "verbose_name" not in declared:
            wrong.append(f"{opts.label}: acronym in {name}, verbose_name {opts.verbose_name!r}")
        if "verbose_name_plural" not in declared and _naive_plural_wrong(str(opts.verbose_name)):
            wrong.append(f"{opts.label}: plural guessed as {opts.verbose_name_plural!r}")
    assert wrong == [], "\n".join(wrong)


def _time_fields(model) -> set[str]:
    return {f.name for f in model._meta.get_fields() if isinstance(f, TIME_FIELDS) and f.concrete}


def _filter_names(model_admin) -> set[str]:
    names = set()
    for entry in model_admin.list_filter:
        if isinstance(entry, str):
            names.add(entry.split("__")[0])
        elif isinstance(entry, tuple | list):
            names.add(str(entry[0]).split("__")[0])
        else:
            names.add(getattr(entry, "parameter_name", "") or "")
    return names


def test_every_time_bearing_list_has_a_date_hierarchy_or_a_date_filter():
    missing = []
    for model, model_admin in _registered():
        times = _time_fields(model)
        if not times:
            continue
        hierarchy = str(model_admin.date_hierarchy or "").split("__")[0]
        if hierarchy in times or _filter_names(model_admin) & times:
            continue
        missing.append(f"{model._meta.label}: {sorted(times)}")
    assert missing == [], "lists without date_hierarchy or a date filter:\n" + "\n".join(missing)


@pytest.mark.django_db
def test_every_foreign_key_in_an_admin_form_is_an_autocomplete_or_a_raw_id():
    superuser = User.objects.create_superuser("tidy@example.test", "x-very-long-password-1")
    wrong = []
    for model, model_admin in _registered():
        request = RequestFactory().get("/admin/")
        request.user = superuser
        request._policy_role = Role.SUPERUSER
        forms = [(model_admin.get_form(request), None)]
        for inline in model_admin.get_inline_instances(request):
            formset = inline.get_formset(request)
            forms.append((formset.form, formset.fk.name))  # the parent's key is not shown
        for form, parent_key in forms:
            for name, field in form.base_fields.items():
                if name == parent_key or not isinstance(field, ModelChoiceField):
                    continue
                widget = field.widget
                if isinstance(widget, RelatedFieldWidgetWrapper):
                    widget = widget.widget
                if not isinstance(widget, LOOKUP_WIDGETS):
                    wrong.append(f"{model._meta.label} ({form.__name__}).{name}")
    assert wrong == [], "foreign keys shown as a full select:\n" + "\n".join(wrong)


def test_admin_system_checks_pass():
    """Autocomplete needs search_fields on the target's admin (admin.E039/E040) and so on."""
    errors = [e for e in checks.run_checks(tags=[checks.Tags.admin]) if e.level >= checks.ERROR]
    assert errors == []


@pytest.mark.django_db
def test_member_change_page_never_shows_the_chain_salt(staff_client, member):
    """The salt unlinks on-chain beneficiary hashes from a member; typing or copying it by hand
    would undo that, so the admin neither shows nor accepts it."""
    from apps.accounts.services import member_chain_salt_ensure

    salt = member_chain_salt_ensure(member_id=member.pk)
    response = staff_client.get(f"/admin/accounts/member/{member.pk}/change/")
    assert response.status_code == 200
    assert b'name="chain_salt"' not in response.content
    assert salt.encode() not in response.content


@pytest.mark.django_db
def test_member_status_is_not_a_form_field(staff_client, member):
    """An applicant becomes active only through approval (invitation, contract, share invoice),
    and a member leaves only through the leave action (final invoice, share refund): the change
    form shows the status but cannot set it."""
    response = staff_client.get(f"/admin/accounts/member/{member.pk}/change/")
    assert response.status_code == 200
    assert b'name="status"' not in response.content
    assert member.get_status_display().encode() in response.content
