"""The staff home (admin index): the to-do queue with counts and working links, health at a
glance, the same numbers for auditors, nothing for anyone else."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from apps.accounts.models import Member
from apps.accounts.tests.factories import AuditorUserFactory, MemberFactory, StaffUserFactory
from apps.chain.models import ChainIntent
from apps.compliance.models import ErasureRequest
from apps.market.tests.factories import make_trade
from apps.meters.models import Conflict, Quarantine
from apps.meters.tests.factories import MeterFactory
from apps.portal.activity import BEAT_KEY, WORKERS_KEY, task_run_record
from tests.fixtures.core import login_with_mfa


def _client(user) -> Client:
    client = Client()
    login_with_mfa(client, user)
    return client


def _counts(page: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-todo="(\w+)">(\d+)<', page)}


def _links(page: str) -> dict[str, str]:
    return {k: html.unescape(v) for v, k in re.findall(r'href="([^"]+)" data-todo="(\w+)"', page)}


@pytest.fixture
def queues(db):
    member = MemberFactory()
    make_trade(member, settled=True)  # one settlement run awaiting approval
    meter = MeterFactory(member=member)
    now = timezone.now()
    for reason in ("bad_signature", "bad_signature", "unknown_meter"):
        Quarantine.objects.create(received_at=now, reason=reason, payload=b"{}", serial="X")
    Quarantine.objects.create(
        received_at=now, reason="negative", payload=b"{}", status=Quarantine.Status.REPROCESSED
    )
    hour = now.replace(minute=0, second=0, microsecond=0)
    Conflict.objects.create(
        meter=meter, interval_start=hour, existing_version=1, import_wh=5, export_wh=0,
        detected_at=now,
    )  # fmt: skip
    intent = ChainIntent.objects.create(
        intent="anchor", payload={}, idempotency_key="k1", network="test",
        status=ChainIntent.Status.FAILED,
    )  # fmt: skip
    ChainIntent.objects.create(intent="anchor", payload={}, idempotency_key="k2", network="test")
    ChainIntent.objects.filter(idempotency_key="k2").update(updated_at=now - timedelta(hours=1))
    ErasureRequest.objects.create(member=MemberFactory())
    MemberFactory(status=Member.Status.APPLICANT)
    return SimpleNamespace(member=member, intent=intent)


def test_staff_see_the_queue_with_counts_and_links_that_open_the_filtered_lists(queues):
    client = _client(StaffUserFactory())
    page = client.get("/admin/").content.decode()
    assert 'id="staff-todo"' in page
    counts = _counts(page)
    assert counts["settlement_runs"] == 1
    assert counts["quarantine_bad_signature"] == 2 and counts["quarantine_unknown_meter"] == 1
    assert "quarantine_negative" not in counts  # re-processed rows are done
    assert counts["conflicts"] == 1
    assert counts["intents_failed"] == 1 and counts["intents_stuck"] == 1
    assert counts["erasure_requests"] == 1 and counts["applicants"] == 1
    links = _links(page)
    expected_rows = {
        "settlement_runs": 1,
        "quarantine_bad_signature": 2,
        "conflicts": 1,
        "intents_failed": 1,
        "intents_stuck": 1,
        "erasure_requests": 1,
        "applicants": 1,
    }
    for key, rows in expected_rows.items():
        response = client.get(links[key])
        assert response.status_code == 200, (key, links[key], response.status_code)
        assert response.context["cl"].result_count == rows, key


def test_auditors_see_the_same_numbers_and_nobody_else_sees_the_home(queues):
    staff = _counts(_client(StaffUserFactory()).get("/admin/").content.decode())
    auditor_page = _client(AuditorUserFactory()).get("/admin/").content.decode()
    assert _counts(auditor_page) == staff
    member = Client()
    member.force_login(MemberFactory().user)
    assert member.get("/admin/").status_code == 302
    no_mfa = Client()
    no_mfa.force_login(StaffUserFactory())
    response = no_mfa.get("/admin/")
    assert 'id="staff-todo"' not in response.content.decode()
    assert Client().get("/admin/").status_code == 302


@pytest.mark.django_db
def test_health_shows_beat_jobs_and_workers_as_the_workers_report_them():
    cache.delete_many([BEAT_KEY, WORKERS_KEY])
    client = _client(StaffUserFactory())
    page = client.get("/admin/").content.decode()
    assert 'id="staff-health"' in page
    assert re.search(r"meters-ingest-sweep</th>\s*<td>not run yet", page)
    assert re.search(r"Workers alive[^<]*</th>\s*<td>0", page)
    task = SimpleNamespace(name="apps.meters.tasks.ingest_sweep",
                           request=SimpleNamespace(hostname="ingest@host1"))  # fmt: skip
    task_run_record(task=task)
    page = client.get("/admin/").content.decode()
    assert re.search(r'class="health-ok">\s*<th scope="row">meters-ingest-sweep</th>', page)
    assert re.search(r"Workers alive[^<]*</th>\s*<td>1", page) and "ingest@host1" in page
    # A job whose last run is long past its schedule is flagged.
    cache.set(BEAT_KEY, {"apps.meters.tasks.ingest_sweep": datetime(2026, 1, 1, tzinfo=UTC)
                         .isoformat()})  # fmt: skip
    page = client.get("/admin/").content.decode()
    assert re.search(r'class="health-warn">\s*<th scope="row">meters-ingest-sweep</th>', page)
    cache.delete_many([BEAT_KEY, WORKERS_KEY])
