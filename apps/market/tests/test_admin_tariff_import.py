"""Tariff versions imported in the admin: through `tariff_create`, whole file or nothing."""

from __future__ import annotations

import html
import io
import re

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.tests.factories import AuditorUserFactory, StaffUserFactory
from apps.audit.models import AuditLog
from apps.market.models import Tariff
from tests.fixtures.core import login_with_mfa

IMPORT_URL = reverse("admin:market_tariff_import")
PROCESS_URL = reverse("admin:market_tariff_process_import")
HEADER = "name,valid_from,valid_to,retail_price,feed_in_price,vat_rate\n"


def _upload(body: str) -> io.BytesIO:
    upload = io.BytesIO((HEADER + body).encode())
    upload.name = "tariffs.csv"
    return upload


def _staff() -> Client:
    client = Client()
    login_with_mfa(client, StaffUserFactory())
    return client


def _text(page: bytes) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.decode())))


@pytest.mark.django_db
def test_two_versions_preview_then_confirm():
    client = _staff()
    body = ("Winter 2027,2027-01-01T00:00:00+00:00,2027-04-01T00:00:00+00:00,0.3400,0.0800,0.19\n"
            "Spring 2027,2027-04-01T00:00:00+00:00,,0.3300,0.0750,0.19\n")  # fmt: skip
    page = client.post(IMPORT_URL, {"import_file": _upload(body), "format": "0"}).content.decode()
    assert PROCESS_URL in page and not Tariff.objects.exists()
    form = page[page.index(PROCESS_URL) :]
    fields = dict(re.findall(r'name="(\w+)"[^>]*value="([^"]*)"', form[: form.index("</form>")]))
    assert client.post(PROCESS_URL, fields).status_code == 302
    assert list(Tariff.objects.order_by("valid_from").values_list("name", flat=True)) == [
        "Winter 2027", "Spring 2027"]  # fmt: skip
    assert AuditLog.objects.filter(event="tariff.created").count() == 2


@pytest.mark.django_db
def test_an_overlapping_or_inverted_row_imports_nothing_and_is_named():
    client = _staff()
    body = ("A,2027-01-01T00:00:00+00:00,2027-06-01T00:00:00+00:00,0.3400,0.0800,0.19\n"
            "B,2027-03-01T00:00:00+00:00,,0.3300,0.0750,0.19\n"
            "C,2028-01-01T00:00:00+00:00,,0.0500,0.0800,0.19\n"
            "D,2029-01-01T00:00:00+00:00,,zero,0.0800,0.19\n")  # fmt: skip
    response = client.post(IMPORT_URL, {"import_file": _upload(body), "format": "0"})
    text = _text(response.content)
    assert "2 1 valid_from The validity overlaps the tariff A from 2027-01-01" in text
    assert "3 1 retail_price Prices per kWh: 0 ≤ feed-in < retail ≤ 10." in text
    assert "4 1 retail_price 'zero' is not a decimal number (use a dot: 0.32)." in text
    assert PROCESS_URL not in response.content.decode()
    assert not Tariff.objects.exists() and not AuditLog.objects.filter(event="tariff.created")


@pytest.mark.django_db
def test_auditors_may_not_import_tariffs():
    client = Client()
    login_with_mfa(client, AuditorUserFactory())
    body = "A,2027-01-01T00:00:00+00:00,,0.3400,0.0800,0.19\n"
    assert client.post(IMPORT_URL, {"import_file": _upload(body), "format": "0"}).status_code == 403
    assert not Tariff.objects.exists()
