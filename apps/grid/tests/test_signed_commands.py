"""Acceptance 3: device commands are signed by the cooperative's command key with a sequence
number and an expiry; devices refuse unsigned, forged, expired and replayed commands; the server
refuses unsigned, forged and replayed acknowledgements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import coincurve
import pytest
from django.urls import reverse

from apps.audit.events import AuditEvent
from apps.audit.models import AuditLog
from apps.grid import commands_mqtt
from apps.grid.command_signing import ACK, COMMAND, CommandVerifier, message_signer, sign_message
from apps.grid.commands_mqtt import cooperative_command_address
from apps.grid.models import DeviceCommand
from apps.grid.services import (
    device_command_acknowledge,
    device_commands_publish,
    dispatch_plan_create,
)
from apps.grid.tests.factories import EVChargerFactory
from apps.meters.tests.factories import MeterFactory
from tests.fixtures.core import login_with_mfa

pytestmark = pytest.mark.django_db
START = datetime(2026, 3, 19, tzinfo=UTC)


@pytest.fixture
def published(monkeypatch):
    """Two plans for one EV charger, each published (the broker is replaced by a list)."""
    sent: list = []
    monkeypatch.setattr(
        commands_mqtt,
        "publish_commands",
        lambda messages: sent.extend(messages) or [m.serial for m in messages],
    )
    device = EVChargerFactory(available_from_hour=0)
    device.meter = MeterFactory(member=device.connection_point.member)
    device.save(update_fields=["meter"])
    first = dispatch_plan_create(start=START, force=True)
    device_commands_publish(plan_id=first.pk)
    second = dispatch_plan_create(start=START + timedelta(hours=1), force=True)
    device_commands_publish(plan_id=second.pk)
    return device, [m.payload for m in sent], [first, second]


def test_commands_carry_a_signature_sequence_and_expiry(published):
    device, (one, two), (first, second) = published
    assert message_signer(COMMAND, one) == cooperative_command_address()
    assert (one["serial"], one["seq"], two["seq"]) == (device.serial, 1, 2)
    assert datetime.fromisoformat(one["expires_at"]) == first.start + timedelta(days=1)
    assert DeviceCommand.objects.get(plan=second).seq == 2


def test_device_refuses_unsigned_forged_expired_and_replayed_commands(published):
    device, (one, two), _ = published
    now = START
    verifier = CommandVerifier(device.serial, cooperative_command_address())
    unsigned = {k: v for k, v in one.items() if k != "signature"}
    assert verifier.refusal(unsigned, now) == "unsigned"
    tampered = {**one, "setpoints_w": [11_000] * len(one["setpoints_w"])}
    assert verifier.refusal(tampered, now) == "not signed by the cooperative"
    forger = coincurve.PrivateKey().secret
    assert verifier.refusal(sign_message(COMMAND, unsigned, forger), now) == (
        "not signed by the cooperative"
    )
    assert verifier.refusal(one, now + timedelta(days=2)) == "expired"
    assert verifier.refusal(one, now) is None  # applied
    assert verifier.refusal(one, now) == "replayed"  # the same message again
    assert verifier.refusal(two, now) is None  # the next one
    assert verifier.refusal(one, now) == "replayed"  # an older one, later
    other = CommandVerifier("someone-else", cooperative_command_address())
    assert other.refusal(two, now) == "for another device"


def test_server_refuses_unsigned_forged_and_replayed_acks(published):
    device, (one, two), (first, second) = published
    key = device.meter.test_key

    def ack(command: dict, *, signer: bytes | None = key, **extra) -> dict:
        doc = {
            "command_id": command["command_id"],
            "serial": device.serial,
            "seq": command["seq"],
            "status": "accepted",
            **extra,
        }
        return sign_message(ACK, doc, signer) if signer else doc

    def answer(command: dict, doc: dict):
        return device_command_acknowledge(
            serial=device.serial, command_id=command["command_id"], accepted=True, detail=doc
        )

    cmd_one = DeviceCommand.objects.get(plan=first)
    assert cmd_one.status == DeviceCommand.Status.SUPERSEDED  # the second plan replaced it
    cmd_two = DeviceCommand.objects.get(plan=second)
    assert answer(two, ack(two, signer=None)) is None  # unsigned
    assert answer(two, ack(two, signer=coincurve.PrivateKey().secret)) is None  # wrong key
    # The signed ack of the first command, replayed for the second: it names another command.
    assert answer(two, ack(one)) is None
    assert answer(two, ack(two, seq=1)) is None  # a stale sequence number
    cmd_two.refresh_from_db()
    assert cmd_two.status == DeviceCommand.Status.SENT
    refused = AuditLog.objects.filter(event=AuditEvent.DEVICE_COMMAND_ACK_REFUSED)
    assert refused.filter(target_id=str(cmd_two.pk)).count() == 4
    assert answer(two, ack(two)).status == DeviceCommand.Status.ACKNOWLEDGED
    # Replaying the good ack changes nothing.
    again = answer(two, ack(two))
    assert again.status == DeviceCommand.Status.ACKNOWLEDGED and again.acked_at == (
        DeviceCommand.objects.get(pk=cmd_two.pk).acked_at
    )


def test_an_ack_that_overtakes_the_publishers_bookkeeping_is_recorded(monkeypatch):
    """A quick device answers while the publisher still waits for the broker's PUBACK, before
    it has marked the command sent (the ack listener is another process): the ack counts."""
    device = EVChargerFactory(available_from_hour=0)
    device.meter = MeterFactory(member=device.connection_point.member)
    device.save(update_fields=["meter"])
    seen: list[str] = []

    def publish_and_answer(messages):
        for m in messages:
            ack = {"command_id": m.payload["command_id"], "serial": m.serial,
                   "seq": m.payload["seq"], "status": "accepted"}  # fmt: skip
            signed = sign_message(ACK, ack, device.meter.test_key)
            cmd = device_command_acknowledge(
                serial=m.serial, command_id=ack["command_id"], accepted=True, detail=signed
            )
            seen.append(cmd.status)
        return [m.serial for m in messages]

    monkeypatch.setattr(commands_mqtt, "publish_commands", publish_and_answer)
    plan = dispatch_plan_create(start=START, force=True)
    assert device_commands_publish(plan_id=plan.pk) == 1
    cmd = DeviceCommand.objects.get(plan=plan)
    assert seen == [DeviceCommand.Status.ACKNOWLEDGED]
    assert cmd.status == DeviceCommand.Status.ACKNOWLEDGED
    assert cmd.sent_at is not None and cmd.acked_at is not None
    acknowledged = AuditLog.objects.filter(event=AuditEvent.DEVICE_COMMAND_ACKNOWLEDGED)
    assert acknowledged.filter(target_id=str(cmd.pk)).count() == 1


def test_a_device_that_lets_its_commands_expire_is_left_out_and_flagged(
    published, client, staff_user
):
    from apps.grid.services import device_commands_expire
    from apps.grid.services.dispatch import flexible_device_heard

    device, _, _ = published
    # The first command was superseded; let the second one and a third one expire.
    device_commands_expire(now=datetime.now(UTC) + timedelta(hours=1))
    device.refresh_from_db()
    assert device.unresponsive_since is None  # one miss is not enough
    third = dispatch_plan_create(start=START + timedelta(hours=2), force=True)
    device_commands_publish(plan_id=third.pk)
    device_commands_expire(now=datetime.now(UTC) + timedelta(hours=1))
    device.refresh_from_db()
    assert device.unresponsive_since is not None and device.missed_commands == 2
    flagged = AuditLog.objects.filter(event=AuditEvent.FLEXIBLE_DEVICE_FLAGGED)
    assert flagged.filter(target_id=str(device.pk)).count() == 1

    fourth = dispatch_plan_create(start=START + timedelta(hours=3), force=True)
    assert not fourth.commands.filter(device=device).exists()  # excluded from dispatch
    login_with_mfa(client, staff_user)
    html = client.get(reverse("grid:dashboard")).content.decode()
    assert f"Left out of dispatch (commands unanswered): {device.serial} since" in html

    flexible_device_heard(device_id=device.pk)  # e.g. its telemetry arrives again
    assert AuditLog.objects.filter(
        event=AuditEvent.FLEXIBLE_DEVICE_UNFLAGGED, target_id=str(device.pk)
    ).exists()
    fifth = dispatch_plan_create(start=START + timedelta(hours=4), force=True)
    assert fifth.commands.filter(device=device).exists()
