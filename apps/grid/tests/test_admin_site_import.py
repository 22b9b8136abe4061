"""Importing sites (connection points) in the admin: preview, confirm, all-or-nothing, through
`connection_point_create` (audit-logged); a bad row imports nothing and is named with its
problem."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.tests.factories import AuditorUserFactory, MemberFactory, StaffUserFactory
from apps.audit.models import AuditLog
from apps.grid.models import ConnectionPoint
from apps.grid.tests.factories import TransformerFactory
from tests.fixtures.core import login_with_mfa

pytestmark = pytest.mark.django_db

IMPORT_URL = reverse("admin:grid_connectionpoint_import")
PROCESS_URL = reverse("admin:grid_connectionpoint_process_import")
HEADER = ["code", "membership_number", "transformer", "street", "postal_code", "city",
          "expected_annual_wh", "pv_peak_w", "contracted_power_w"]  # fmt: skip


def _csv(rows: list[list[str]]) -> io.BytesIO:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(HEADER)
    writer.writerows(rows)
    upload = io.BytesIO(text.getvalue().encode())
    upload.name = "sites.csv"
    return upload


@pytest.fixture
def rows():
    member = MemberFactory()
    transformer = TransformerFactory()
    return [
        [f"DE-SITE-{n:03d}", member.membership_number, transformer.name, f"Weg {n}", "79100",
         "Freiburg", "3500000", "8000" if n % 2 else "", ""]
        for n in range(4)
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


def test_a_good_file_previews_then_imports_every_site_through_the_service(rows):
    client = _client(StaffUserFactory())
    page = _preview(client, rows)
    assert "DE-SITE-003" in page and "failed to validate" not in page
    assert not ConnectionPoint.objects.filter(code__startswith="DE-SITE-").exists()
    assert client.post(PROCESS_URL, _confirm_fields(page)).status_code == 302
    sites = ConnectionPoint.objects.filter(code__startswith="DE-SITE-").order_by("code")
    assert sites.count() == 4
    first, second = sites[0], sites[1]
    assert first.member.membership_number == rows[0][1] and first.transformer.name == rows[0][2]
    assert first.bus_name == first.transformer.lv_bus and first.contracted_power_w == 30_000
    assert (first.pv_peak_w, second.pv_peak_w, second.expected_annual_wh) == (None, 8000, 3_500_000)
    assert AuditLog.objects.filter(event="connection_point.created").count() == 4


def test_one_bad_row_imports_nothing_and_names_the_row_and_the_problem(rows):
    rows[1][2] = "NO-SUCH-TRAFO"  # data row 2
    rows[3][7] = "big"  # data row 4
    client = _client(StaffUserFactory())
    page = _preview(client, rows)
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))
    assert "Some rows failed to validate" in text
    assert "2 1 transformer No transformer named NO-SUCH-TRAFO." in text
    assert "4 1 pv_peak_w 'big' is not a whole number." in text
    assert PROCESS_URL not in page
    assert not ConnectionPoint.objects.filter(code__startswith="DE-SITE-").exists()
    assert not AuditLog.objects.filter(event="connection_point.created").exists()


def test_auditors_may_not_import_sites(rows):
    client = _client(AuditorUserFactory())
    assert client.get(IMPORT_URL).status_code == 403
    assert client.post(IMPORT_URL, {"import_file": _csv(rows), "format": "0"}).status_code == 403
    assert not ConnectionPoint.objects.filter(code__startswith="DE-SITE-").exists()
