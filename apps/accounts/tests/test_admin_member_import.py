"""Importing a member register in the admin: preview, confirm, all-or-nothing, through the
membership services (audit-logged); a bad row imports nothing and is named with its problem."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Member, User
from apps.accounts.tests.factories import AuditorUserFactory, MemberFactory, StaffUserFactory
from apps.audit.models import AuditLog
from tests.fixtures.core import login_with_mfa

pytestmark = pytest.mark.django_db

IMPORT_URL = reverse("admin:accounts_member_import")
PROCESS_URL = reverse("admin:accounts_member_process_import")
HEADER = ["membership_number", "email", "legal_name", "kind", "street", "postal_code", "city",
          "country", "status"]  # fmt: skip


def _csv(rows: list[list[str]]) -> io.BytesIO:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(HEADER)
    writer.writerows(rows)
    upload = io.BytesIO(text.getvalue().encode())
    upload.name = "members.csv"
    return upload


def _rows(count: int) -> list[list[str]]:
    return [
        [f"R-{n:04d}", f"member{n}@example.test", f"Member {n}", "prosumer", f"Weg {n}", "79100",
         "Freiburg", "de", "active" if n else "applicant"]
        for n in range(count)
    ]  # fmt: skip


def _client(user) -> Client:
    client = Client()
    login_with_mfa(client, user)
    return client


def _preview(client: Client, rows) -> str:
    response = client.post(IMPORT_URL, {"import_file": _csv(rows), "format": "0"})
    assert response.status_code == 200
    return response.content.decode()


def _confirm_fields(page: str) -> dict[str, str]:
    form = page[page.index(PROCESS_URL) :]
    return dict(re.findall(r'name="(\w+)"[^>]*value="([^"]*)"', form[: form.index("</form>")]))


def test_a_good_register_previews_then_imports_every_member_through_the_services():
    client = _client(StaffUserFactory())
    page = _preview(client, _rows(5))
    assert "R-0004" in page and "failed to validate" not in page
    assert not Member.objects.filter(membership_number__startswith="R-").exists()  # preview only
    response = client.post(PROCESS_URL, _confirm_fields(page))
    assert response.status_code == 302
    members = Member.objects.filter(membership_number__startswith="R-").order_by("pk")
    assert [m.status for m in members] == ["applicant"] + ["active"] * 4
    first = members.last()
    assert (first.kind, first.city, first.country) == ("prosumer", "Freiburg", "DE")
    assert first.user.email == "member4@example.test" and not first.user.has_usable_password()
    assert AuditLog.objects.filter(event="member.applied").count() == 5
    assert AuditLog.objects.filter(event="member.activated").count() == 4


def test_one_bad_row_imports_nothing_and_names_the_row_and_the_problem():
    MemberFactory(membership_number="TAKEN-1")
    rows = _rows(6)
    rows[2][1] = "not-an-address"  # data row 3
    rows[4][0] = "TAKEN-1"  # data row 5
    client = _client(StaffUserFactory())
    page = _preview(client, rows)
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))
    assert "Some rows failed to validate" in text
    assert "3 1 email 'not-an-address' is not an e-mail address." in text
    assert "5 1 membership_number Member TAKEN-1 already exists." in text
    assert PROCESS_URL not in page  # no confirm button
    assert not Member.objects.filter(membership_number__startswith="R-").exists()
    assert not User.objects.filter(email__startswith="member").exists()


def test_an_e_mail_taken_between_preview_and_confirm_rolls_back_the_whole_file():
    client = _client(StaffUserFactory())
    page = _preview(client, _rows(3))
    User.objects.create_user(email="member2@example.test", password=None)
    response = client.post(PROCESS_URL, _confirm_fields(page), follow=True)
    text = html.unescape(response.content.decode())
    assert "Nothing was imported" in text and "line 3" in text and "already registered" in text
    assert not Member.objects.filter(membership_number__startswith="R-").exists()
    assert not AuditLog.objects.filter(event="member.applied").exists()


def test_auditors_may_not_import_members():
    client = _client(AuditorUserFactory())
    assert client.get(IMPORT_URL).status_code == 403
    upload = {"import_file": _csv(_rows(1)), "format": "0"}
    assert client.post(IMPORT_URL, upload).status_code == 403
    assert not Member.objects.filter(membership_number__startswith="R-").exists()
