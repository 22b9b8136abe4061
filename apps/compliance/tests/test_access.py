"""Auditors are read-only: every write endpoint of incentives and compliance answers 403 to an
auditor (and to a member where it is a staff operation); GET pages stay readable."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, reverse

from apps.compliance import urls as compliance_urls
from apps.incentives import urls as incentives_urls
from apps.incentives.models import Certificate

pytestmark = pytest.mark.django_db

KWARGS = {"pk": 1, "kind": "carbon", "fmt": "csv"}


def _all_routes():
    for module in (incentives_urls, compliance_urls):
        for pattern in module.urlpatterns:
            assert isinstance(pattern, URLPattern)
            kwargs = {k: KWARGS[k] for k in pattern.pattern.converters}
            yield f"{module.app_name}:{pattern.name}", kwargs


ROUTES = list(_all_routes())


@pytest.mark.parametrize(("name", "kwargs"), ROUTES, ids=[r[0] for r in ROUTES])
def test_auditor_gets_403_on_every_write(auditor_client, name, kwargs):
    url = reverse(name, kwargs=kwargs)
    for method in ("post", "put", "patch", "delete"):
        response = getattr(auditor_client, method)(url, {"reason": "x", "action": "erase"})
        assert response.status_code == 403, (method, url, response.status_code)


def test_auditor_reads_reports_registry_and_erasure_list(world, auditor_client):
    for name in ("compliance:reports", "incentives:registry", "compliance:erasure"):
        response = auditor_client.get(reverse(name), {"month": "2026-06"})
        assert response.status_code == 200, name
    page = auditor_client.get(reverse("incentives:registry"), {"month": "2026-06"}).content
    assert b'action="/incentives/registry/' not in page  # no cancel buttons for auditors


def test_staff_can_cancel_a_certificate_but_members_cannot(world, staff_client, client):
    cert = Certificate.objects.filter(status="active").first()
    client.force_login(world.consumer.user)
    url = reverse("incentives:registry_cancel", kwargs={"pk": cert.pk})
    assert client.post(url, {"reason": "test"}).status_code == 403
    staff_client.post(url, {"reason": "meter replaced"})
    cert.refresh_from_db()
    assert (cert.status, cert.cancelled_reason) == ("cancelled", "meter replaced")


def test_members_only_see_and_claim_their_own_certificates(world, client):
    me, other = world.producer, world.consumer
    mine = Certificate.objects.filter(owner=me, status="active").first()
    theirs = Certificate.objects.filter(owner=other).exclude(status="transferred").first()
    client.force_login(me.user)
    page = client.get(reverse("incentives:certificates")).content.decode()
    assert f'data-certificate="{mine.pk}"' in page
    assert f'data-certificate="{theirs.pk}"' not in page
    claim = reverse("incentives:certificate_claim", kwargs={"pk": theirs.pk})
    status_before = theirs.status
    assert client.post(claim, {"beneficiary": "me"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == status_before
    ok = client.post(
        reverse("incentives:certificate_claim", kwargs={"pk": mine.pk}),
        {"beneficiary": "Producer GmbH", "wh": "1"},
    )
    assert ok.status_code == 302
    part = Certificate.objects.get(parent=mine, status="claimed")
    assert (part.wh, part.beneficiary) == (1, "Producer GmbH")
    assert client.get(reverse("incentives:rewards")).status_code == 200


def test_unknown_report_or_bad_period_is_a_clear_error(auditor_client):
    assert auditor_client.get(reverse("compliance:report", args=["nope"])).status_code == 404
    bad = auditor_client.get(reverse("compliance:report", args=["carbon"]), {"month": "June"})
    assert bad.status_code == 400 and b"month=YYYY-MM" in bad.content
    download = reverse("compliance:report_download", args=["carbon", "docx"])
    assert auditor_client.get(download).status_code == 404
