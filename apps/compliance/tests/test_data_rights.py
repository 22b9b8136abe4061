"""Member data rights: export all my data; staff-handled erasure that keeps ledgers verifiable."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import date
from xml.etree import ElementTree

import pytest
from django.urls import reverse

from apps.accounts.models import Member
from apps.audit.events import AuditEvent
from apps.audit.models import AuditLog
from apps.compliance.models import ErasureRequest
from apps.compliance.reports import report_build
from apps.compliance.services import member_erase
from apps.core.exceptions import ApplicationError
from apps.incentives.models import Certificate
from apps.market.models import SettlementLine, Statement
from apps.market.services.settlement import trade_proof, trades_tree
from apps.market.services.statements import (
    statement_csv,
    statement_generate,
    statement_issue,
    statement_review,
    statement_totals,
)

from .conftest import DAY

pytestmark = pytest.mark.django_db
ESPI = "{http://naesb.org/espi}"


def test_member_exports_all_and_only_their_own_data(world, client):
    client.force_login(world.consumer.user)
    response = client.post(reverse("compliance:my_data_export"))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(response.content))
    names = set(zf.namelist())
    assert {"member.json", "intervals.csv", "green_button.xml", "certificates.csv",
            "rewards.csv", "trades.csv", "audit_log.csv"} <= names  # fmt: skip
    profile = json.loads(zf.read("member.json"))
    assert profile["membership_number"] == world.consumer.membership_number
    intervals = list(csv.DictReader(io.StringIO(zf.read("intervals.csv").decode())))
    assert {r["meter"] for r in intervals} == {world.houses[1].serial}
    assert len(intervals) == 94
    certs = list(csv.DictReader(io.StringIO(zf.read("certificates.csv").decode())))
    assert {int(c["id"]) for c in certs} == set(
        Certificate.objects.filter(owner=world.consumer).values_list("pk", flat=True)
    )
    feed = ElementTree.fromstring(zf.read("green_button.xml"))  # noqa: S314 - our own output
    readings = feed.iter(f"{ESPI}IntervalReading")
    values = [int(r.find(f"{ESPI}value").text) for r in readings]
    assert sum(values) == sum(int(r["import_wh"]) for r in intervals)
    assert AuditLog.objects.filter(event=AuditEvent.MEMBER_DATA_EXPORTED).count() == 1
    # Someone else's session exports someone else's data: never this member's.
    client.force_login(world.producer.user)
    other = zipfile.ZipFile(io.BytesIO(client.post(reverse("compliance:my_data_export")).content))
    assert (
        json.loads(other.read("member.json"))["membership_number"] != profile["membership_number"]
    )


def test_erasure_pseudonymises_and_leaves_statements_and_trades_verifiable(world, client):
    from decimal import Decimal

    run, member = world.run, world.consumer
    tree = trades_tree(run=run)
    run.trades_root = "0x" + tree.root.hex()
    run.save(update_fields=["trades_root"])
    SettlementLine.objects.create(
        run=run, member=member, interval_start=world.trade.interval_start, import_wh=500,
        bought_wh=400, grid_import_wh=100, p2p_purchase=Decimal("0.060000"),
        network_fee=Decimal("0.004000"), grid_import=Decimal("0.032000"),
    )  # fmt: skip
    statement = statement_generate(member=member, month=date(2026, 6, 1))
    statement_review(statement=statement, actor=None)
    statement_issue(statement=statement, actor=None)
    csv_before = statement_csv(statement=Statement.objects.get(pk=statement.pk))
    carbon_before = report_build(kind="carbon", start=DAY, end=DAY.replace(day=5)).content_hash

    client.force_login(member.user)
    client.post(reverse("compliance:my_data_erasure"))
    request = ErasureRequest.objects.get(member=member)
    erased = member_erase(member=member, actor=None, request=request)

    member = Member.objects.select_related("user").get(pk=member.pk)
    assert member.legal_name == f"Erased member {member.membership_number}"
    assert (member.street, member.city, member.user.is_active) == ("", "", False)
    assert member.user.email.endswith("@erased.invalid") and member.pseudonymised_at
    assert not member.user.has_usable_password()
    request.refresh_from_db()
    assert request.status == "completed" and erased.pk == member.pk
    # Ledgers stay verifiable: the issued statement's totals still equal its lines, the CSV is
    # byte-identical, the trade is still proven in the run's root, reports hash the same.
    statement = Statement.objects.get(pk=statement.pk)
    assert statement.totals == statement_totals(
        lines=list(statement.lines.all()), vat_rate=statement.vat_rate
    )
    assert statement_csv(statement=statement) == csv_before
    assert trade_proof(trade=world.trade).in_root
    assert report_build(kind="carbon", start=DAY, end=DAY.replace(day=5)).content_hash == (
        carbon_before
    )
    with pytest.raises(ApplicationError, match="already erased"):
        member_erase(member=member, actor=None)


def test_erasure_is_refused_with_open_settlements_and_nothing_changes(world):
    from apps.incentives.tests.factories import settled_run

    member = world.producer
    settled_run([(member, world.consumer, DAY.replace(hour=9), 50)], status="metered")
    with pytest.raises(ApplicationError, match="cannot be erased yet.*not settled"):
        member_erase(member=member, actor=None)
    member.refresh_from_db()
    assert member.pseudonymised_at is None and member.user.is_active
    assert not AuditLog.objects.filter(event=AuditEvent.MEMBER_ERASED).exists()
