"""Joining at /join/, e-mail verification, staff approval and rejection, the member status
pipeline with reasons, leaving (final invoice, share capital refund) and several sites."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail, signing
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from apps.accounts.models import Member
from apps.accounts.services import member_status_change
from apps.accounts.tests.factories import MemberFactory
from apps.audit.models import AuditLog
from apps.billing.models import Invoice, JoinApplication, Mandate, SupplyContract
from apps.billing.services import join_approve, join_reject, join_verify, member_leave
from apps.billing.services.membership import join_verify_token
from apps.billing.tests.factories import SupplyTariffVersionFactory
from apps.core.exceptions import ApplicationError, InvalidTransition
from apps.grid.models import ConnectionPoint
from apps.grid.tests.factories import TransformerFactory
from apps.market.services import order_place

pytestmark = pytest.mark.django_db

IBAN = "DE89370400440532013000"


def _form(**overrides) -> dict:
    data = {
        "legal_name": "Ada Sonnberg",
        "email": "ada@example.org",
        "street": "Lindenweg 3",
        "postal_code": "10115",
        "city": "Berlin",
        "country": "DE",
        "same_site_address": "on",
        "expected_kwh": "3200",
        "pv_kwp": "4.5",
        "account_holder": "Ada Sonnberg",
        "iban": "DE89 3704 0044 0532 0130 00",
        "bic": "",
        "mandate_consent": "on",
        "shares": "3",
        "privacy_consent": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture(autouse=True)
def _mail_on_commit(django_capture_on_commit_callbacks, monkeypatch):
    """E-mails leave after the commit (transaction.on_commit): run those callbacks here, as
    the real commit would, for every request and service call of these tests."""
    global _capture
    _capture = django_capture_on_commit_callbacks
    cache.delete("throttle:join:127.0.0.1")  # the rate limit is per address, in the shared cache
    yield
    cache.delete("throttle:join:127.0.0.1")


_capture = None


def committed(fn, *args, **kwargs):
    with _capture(execute=True):
        return fn(*args, **kwargs)


def _apply(client=None, **overrides):
    return committed((client or Client()).post, "/join/", _form(**overrides))


def _link(message) -> str:
    return re.search(r"https?://\S+", message.body).group(0)


@pytest.fixture
def grid_and_tariff():
    return TransformerFactory(), SupplyTariffVersionFactory().tariff


@pytest.fixture
def verified():
    _apply()
    application = JoinApplication.objects.get()
    return join_verify(token=join_verify_token(application=application))


def test_joining_registers_an_applicant_and_the_e_mailed_link_verifies_it():
    response = _apply()
    assert response.status_code == 200 and b"Check your inbox" in response.content
    application = JoinApplication.objects.get()
    assert application.member.status == Member.Status.APPLICANT
    assert not application.member.user.has_usable_password()
    assert application.status == JoinApplication.Status.PENDING
    assert application.iban == IBAN and application.bic == "COBADEFFXXX"
    assert application.site_city == "Berlin" and application.expected_annual_wh == 3_200_000
    assert application.pv_peak_w == 4500 and application.shares == 3
    assert application.privacy_policy_version and application.mandate_text_version
    assert "authorise" in application.mandate_text
    (message,) = mail.outbox
    assert message.to == ["ada@example.org"]
    page = Client().get(_link(message))
    assert page.status_code == 200 and b"confirmed" in page.content
    application.refresh_from_db()
    assert application.status == JoinApplication.Status.VERIFIED
    assert AuditLog.objects.filter(event="join_application.verified").count() == 1


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"iban": "DE89370400440532013001"}, "iban", b"This IBAN is not valid"),
        ({"mandate_consent": None}, "mandate_consent", b"Please sign the SEPA mandate"),
        ({"privacy_consent": None}, "privacy_consent", b"Please accept the privacy policy"),
        ({"shares": "0"}, "shares", b"Subscribe between 1 and 50 shares"),
        ({"email": "not-an-address"}, "email", b"Enter a valid email address"),
        ({"same_site_address": None}, "site_street", b"Enter the site&#x27;s address"),
    ],
)
def test_a_bad_field_is_refused_with_a_clear_error_and_nothing_stored(overrides, field, says):
    response = _apply(**overrides)
    assert response.status_code == 400
    assert f'id="error-{field}"'.encode() in response.content and says in response.content
    assert not JoinApplication.objects.exists() and not Member.objects.exists()
    assert mail.outbox == []


def test_an_e_mail_already_registered_gets_the_same_answer_and_no_application():
    existing = MemberFactory()
    fresh = _apply(email="new@example.org")
    again = _apply(email=existing.user.email.upper())
    assert again.status_code == fresh.status_code == 200

    def strip(response, email):
        page = response.content.decode().replace(email, "EMAIL")
        return re.sub(r'"X-CSRFToken": "[^"]+"', "", page)

    assert strip(again, existing.user.email.upper()) == strip(fresh, "new@example.org")
    assert JoinApplication.objects.count() == 1
    assert [m.to for m in mail.outbox] == [["new@example.org"], [existing.user.email]]
    assert "already" in mail.outbox[1].body
    assert AuditLog.objects.filter(event="join_application.duplicated").count() == 1


def test_an_expired_or_forged_link_does_not_verify(monkeypatch):
    _apply()
    application = JoinApplication.objects.get()
    stale = int(time.time()) - 49 * 3600
    monkeypatch.setattr(
        signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(stale)
    )
    token = join_verify_token(application=application)
    monkeypatch.undo()
    response = Client().get("/join/verify/", {"token": token})
    assert response.status_code == 400 and b"expired" in response.content
    forged = Client().get("/join/verify/", {"token": token[:-2] + "xx"})
    assert forged.status_code == 400 and b"not valid" in forged.content
    application.refresh_from_db()
    assert application.status == JoinApplication.Status.PENDING


def test_an_unverified_application_cannot_be_approved(grid_and_tariff, staff_user):
    _apply()
    application = JoinApplication.objects.get()
    trafo, tariff = grid_and_tariff
    with pytest.raises(ApplicationError, match="not confirmed"):
        join_approve(
            application=application, actor=staff_user, base_url="http://x/", transformer=trafo
        )
    application.refresh_from_db()
    assert application.status == JoinApplication.Status.PENDING
    assert application.member.status == Member.Status.APPLICANT


def test_approval_admits_the_member_with_site_contract_mandate_share_invoice_and_invitation(
    verified, grid_and_tariff, staff_user
):
    trafo, tariff = grid_and_tariff
    mail.outbox.clear()
    committed(
        join_approve,
        application=verified,
        actor=staff_user,
        base_url="http://testserver/",
        transformer=trafo,
        tariff=tariff,
    )
    verified.refresh_from_db()
    member = verified.member
    member.refresh_from_db()
    assert verified.status == JoinApplication.Status.APPROVED and verified.decided_by == staff_user
    assert member.status == Member.Status.ACTIVE and member.user.groups.filter(name="member")
    site = ConnectionPoint.objects.get(member=member)
    assert site.transformer == trafo and site.city == "Berlin" and site.pv_peak_w == 4500
    contract = SupplyContract.objects.get(member=member)
    assert contract.connection_point == site and contract.tariff == tariff
    mandate = Mandate.objects.get(member=member)
    assert mandate.status == Mandate.Status.ACTIVE and mandate.iban == IBAN
    invoice = verified.share_invoice
    assert invoice.kind == Invoice.Kind.SHARE_CAPITAL and invoice.status == Invoice.Status.ISSUED
    assert invoice.number == f"S{invoice.issue_date.year}-000001"
    assert invoice.gross == Decimal("300.00") and invoice.vat == 0
    invitation = next(m for m in mail.outbox if "set your password" in m.subject)
    assert (
        invitation.to == ["ada@example.org"] and "/accounts/password/reset/key/" in invitation.body
    )
    events = set(AuditLog.objects.values_list("event", flat=True))
    assert {
        "member.activated",
        "join_application.approved",
        "connection_point.created",
        "member_site.added",
        "mandate.created",
        "share_capital.invoiced",
        "member_invitation.sent",
    } <= events
    with pytest.raises(ApplicationError, match="already approved"):
        join_approve(
            application=verified, actor=staff_user, base_url="http://x/", transformer=trafo
        )


def test_staff_approve_in_the_admin_after_a_confirmation_page(
    verified, grid_and_tariff, staff_client
):
    trafo, tariff = grid_and_tariff
    url = "/admin/billing/joinapplication/"
    post = {"action": "approve", "_selected_action": [verified.pk]}
    page = staff_client.post(url, post)
    assert page.status_code == 200 and b"Approve join applications?" in page.content
    verified.refresh_from_db()
    assert verified.status == JoinApplication.Status.VERIFIED  # nothing yet
    done = staff_client.post(
        url, {**post, "confirm": "yes", "transformer": trafo.pk, "tariff": tariff.pk}
    )
    assert done.status_code == 302
    verified.refresh_from_db()
    assert verified.status == JoinApplication.Status.APPROVED


def test_an_auditor_cannot_approve_or_reject(verified, grid_and_tariff, auditor_client):
    trafo, tariff = grid_and_tariff
    for action in ("approve", "reject"):
        response = auditor_client.post(
            "/admin/billing/joinapplication/",
            {"action": action, "_selected_action": [verified.pk], "confirm": "yes",
             "transformer": trafo.pk, "tariff": tariff.pk, "reason": "no"},
        )  # fmt: skip
        assert response.status_code == 403
    verified.refresh_from_db()
    assert verified.status == JoinApplication.Status.VERIFIED
    assert verified.member.status == Member.Status.APPLICANT


def test_rejection_needs_a_reason_and_tells_the_applicant(verified, staff_user):
    with pytest.raises(ApplicationError, match="reason"):
        join_reject(application=verified, reason=" ", actor=staff_user)
    mail.outbox.clear()
    committed(
        join_reject, application=verified, reason="No site in our grid area", actor=staff_user
    )
    verified.refresh_from_db()
    assert verified.status == JoinApplication.Status.REJECTED
    assert verified.member.status == Member.Status.LEFT
    assert "No site in our grid area" in mail.outbox[0].body
    with pytest.raises(InvalidTransition):
        join_reject(application=verified, reason="again", actor=staff_user)


def test_status_moves_outside_the_pipeline_are_refused_and_nothing_is_written(staff_user):
    applicant = MemberFactory(status=Member.Status.APPLICANT)
    with pytest.raises(InvalidTransition):
        member_status_change(member=applicant, status="suspended", reason="x", actor=staff_user)
    left = MemberFactory(status=Member.Status.LEFT)
    with pytest.raises(InvalidTransition):
        member_status_change(member=left, status="active", reason="back", actor=staff_user)
    active = MemberFactory()
    with pytest.raises(ApplicationError, match="reason"):
        member_status_change(member=active, status="suspended", reason="", actor=staff_user)
    assert not AuditLog.objects.filter(event__startswith="member.").exists()


def test_suspend_and_reactivate_keep_their_reasons(staff_client):
    member = MemberFactory()
    url = "/admin/accounts/member/"
    for action, status in (("suspend", "suspended"), ("reactivate", "active")):
        staff_client.post(url, {"action": action, "_selected_action": [member.pk],
                                "confirm": "yes", "reason": f"{action} because"})  # fmt: skip
        member.refresh_from_db()
        assert member.status == status and member.status_reason == f"{action} because"
    rows = AuditLog.objects.filter(event__in=["member.suspended", "member.reactivated"])
    assert [r.details["reason"] for r in rows.order_by("id")] == [
        "suspend because",
        "reactivate because",
    ]


def test_leaving_ends_contracts_drafts_the_final_invoice_refunds_shares_keeps_documents(
    verified, grid_and_tariff, staff_user
):
    trafo, tariff = grid_and_tariff
    join_approve(application=verified, actor=staff_user, base_url="http://x/", transformer=trafo,
                 tariff=tariff)  # fmt: skip
    verified.refresh_from_db()
    member = verified.member
    today = timezone.localdate()
    result = member_leave(member=member, reason="Moved abroad", actor=staff_user, left_on=today)
    member.refresh_from_db()
    assert member.status == Member.Status.LEFT and member.left_on == today
    assert SupplyContract.objects.get(member=member).end == today
    final = Invoice.objects.get(member=member, kind=Invoice.Kind.INVOICE)
    assert final.status == Invoice.Status.DRAFT and final.period == today.replace(day=1)
    standing = final.lines.get(kind="standing_charge")
    assert "(1/" in standing.description and standing.net > 0  # one day supplied
    credit = Invoice.objects.get(member=member, kind=Invoice.Kind.CREDIT_NOTE)
    assert credit.original == verified.share_invoice and credit.gross == Decimal("-300.00")
    assert result["share_refunds"] == [credit.number]
    # A left member cannot trade, but still reads and downloads their documents.
    with pytest.raises(ApplicationError, match="Only active members"):
        order_place(member=member, interval_start=timezone.now() + timedelta(hours=1),
                    side="bid", wh=100, limit_price="0.2", actor=member.user)  # fmt: skip
    client = Client()
    client.force_login(member.user)
    page = client.get("/billing/invoices/")
    assert page.status_code == 200 and verified.share_invoice.number.encode() in page.content
    pdf = client.get(f"/billing/invoices/{verified.share_invoice.pk}/pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"


def test_staff_add_a_second_site_and_the_member_sees_both_and_the_total(staff_client):
    from apps.meters.services import BackfillRow, readings_backfill
    from apps.meters.tests.factories import MeterFactory

    trafo, tariff = TransformerFactory(), SupplyTariffVersionFactory().tariff
    member = MemberFactory()
    staff_client.post("/admin/accounts/member/", {
        "action": "add_site", "_selected_action": [member.pk], "confirm": "yes",
        "transformer": trafo.pk, "tariff": tariff.pk, "start": "2026-01-01", "code": "SITE-HOME",
        "street": "Am Hang 1", "postal_code": "10115", "city": "Berlin"})  # fmt: skip
    staff_client.post("/admin/accounts/member/", {
        "action": "add_site", "_selected_action": [member.pk], "confirm": "yes",
        "transformer": trafo.pk, "tariff": tariff.pk, "start": "2026-01-01", "code": "SITE-BARN",
        "city": "Dorf"})  # fmt: skip
    sites = {s.code: s for s in ConnectionPoint.objects.filter(member=member)}
    assert set(sites) == {"SITE-HOME", "SITE-BARN"}
    assert SupplyContract.objects.filter(member=member).count() == 2
    now = timezone.now()
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    rows = []
    for code, wh in (("SITE-HOME", 100), ("SITE-BARN", 250)):
        meter = MeterFactory(member=member, connection_point=sites[code])
        rows += [
            BackfillRow(
                meter_id=meter.pk,
                interval_start=start + i * timedelta(minutes=15),
                import_wh=wh,
                export_wh=0,
                private_key=None,
            )
            for i in range(4)
        ]
    readings_backfill(rows=rows, source="backfill")
    client = Client()
    client.force_login(member.user)
    page = client.get("/").content.decode()
    home = re.search(r'<tr data-site="SITE-HOME">.*?</tr>', page, re.S).group(0)
    barn = re.search(r'<tr data-site="SITE-BARN">.*?</tr>', page, re.S).group(0)
    total = re.search(r'<tr id="sites-total">.*?</tr>', page, re.S).group(0)
    assert "0.40 kWh" in home and "1.00 kWh" in barn and "1.40 kWh" in total
    assert "Am Hang 1" in home


def test_the_staff_home_counts_applicants_to_review(verified, staff_client):
    page = staff_client.get("/admin/").content.decode()
    assert 'data-todo="join_applications"' in page
    assert "/admin/billing/joinapplication/?status__exact=verified" in page


def test_the_join_form_is_rate_limited_per_address(settings):
    settings.MEMBERSHIP_JOIN_RATE_PER_HOUR = 2
    client = Client(REMOTE_ADDR="203.0.113.9")
    cache.delete("throttle:join:203.0.113.9")
    codes = [_apply(client, email=f"p{i}@example.org").status_code for i in range(3)]
    assert codes == [200, 200, 429]
    assert JoinApplication.objects.count() == 2


def test_erasure_and_export_cover_the_application(verified, staff_user):
    import io
    import json
    import zipfile

    from apps.billing.services.personal_data import billing_personal_data_erase
    from apps.compliance.data_export import member_data_export

    body, _name = member_data_export(member=verified.member, actor=staff_user)
    exported = json.loads(zipfile.ZipFile(io.BytesIO(body)).read("membership.json"))
    assert exported["iban"] == IBAN and exported["privacy_policy_version"]
    billing_personal_data_erase(member_id=verified.member_id, pseudonym="Erased 1")
    verified.refresh_from_db()
    assert verified.iban == "" and verified.email == "" and verified.legal_name == "Erased 1"


def test_an_applicant_is_not_admitted_by_reactivation_only_by_approval(staff_client):
    applicant = MemberFactory(status=Member.Status.APPLICANT)
    response = staff_client.post("/admin/accounts/member/", {
        "action": "reactivate", "_selected_action": [applicant.pk], "confirm": "yes",
        "reason": "shortcut"})  # fmt: skip
    assert response.status_code == 302
    applicant.refresh_from_db()
    assert applicant.status == Member.Status.APPLICANT


def test_a_rejected_application_cannot_be_verified_later(verified, staff_user):
    committed(join_reject, application=verified, reason="Outside our area", actor=staff_user)
    with pytest.raises(ApplicationError, match="closed"):
        join_verify(token=join_verify_token(application=verified))
