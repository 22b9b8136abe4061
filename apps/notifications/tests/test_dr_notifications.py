"""Acceptance 6: a DR event created for a transformer notifies its opted-in members by e-mail and
web push (a local push endpoint stands in for the browser vendor's push service) within a
minute, through the Celery task, and the notification is in their portal inbox."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from django.urls import reverse
from django.utils import timezone

from apps.core.intervals import floor_interval
from apps.grid.services.dr import dr_event_create, dr_event_publish
from apps.grid.tests.factories import ConnectionPointFactory, TransformerFactory
from apps.notifications import vapid
from apps.notifications.models import Delivery, Kind, Notification
from apps.notifications.services import notification_preferences_update, push_subscription_add
from config.celery import app as celery_app


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class PushStub:
    """A push service on a free local port: records every POST, answers 201 Created."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                stub.calls.append({"path": self.path, "headers": headers, "body": body})
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def push_stub():
    stub = PushStub()
    yield stub
    stub.close()


@pytest.fixture
def celery_eager(settings):
    """Deliveries go through the Celery task (run eagerly, in this process)."""
    settings.NOTIFICATIONS_ENQUEUE = True
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def _browser(member, stub: PushStub, name: str):
    """A browser's subscription: its own P-256 key and auth secret (to decrypt what it gets)."""
    key = ec.generate_private_key(ec.SECP256R1())
    auth = name.encode().ljust(16, b"-")[:16]
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    push_subscription_add(
        member=member, endpoint=f"{stub.url}/push/{name}", p256dh=_b64(public), auth=_b64(auth)
    )
    return key, auth


def _vapid_verified(authorization: str, audience: str) -> bool:
    """`vapid t=<JWT>,k=<public key>`: the key is ours and the ES256 JWT is signed by it for the
    push service's origin."""
    scheme, _, params = authorization.partition(" ")
    fields = dict(part.split("=", 1) for part in params.split(","))
    if scheme != "vapid" or fields["k"] != vapid.public_key_b64():
        return False
    header, claims, signature = fields["t"].split(".")
    raw = vapid.b64url_decode(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    vapid.private_key().public_key().verify(
        der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256())
    )
    payload = json.loads(vapid.b64url_decode(claims))
    return payload["aud"] == audience and payload["exp"] > time.time()


def test_a_dr_event_for_a_transformer_notifies_opted_in_members_by_email_push_and_inbox(
    transactional_db, client, push_stub, celery_eager, mailoutbox
):
    """Committed data (the Celery task runs after the commit, with its own connection
    handling), so this test uses transactional_db."""
    transformer = TransformerFactory()
    opted_in = ConnectionPointFactory(transformer=transformer)
    opted_out = ConnectionPointFactory(transformer=transformer)
    not_enrolled = ConnectionPointFactory(transformer=transformer, dr_enrolled=False)
    elsewhere = ConnectionPointFactory()  # another transformer: not targeted
    keys = {"in": _browser(opted_in.member, push_stub, "in")}
    _browser(opted_out.member, push_stub, "out")
    _browser(not_enrolled.member, push_stub, "not-enrolled")
    _browser(elsewhere.member, push_stub, "elsewhere")
    # The opted-out member keeps DR news off every channel (other kinds stay on).
    notification_preferences_update(
        member=opted_out.member, enabled={(Kind.STATEMENT, "email"), (Kind.STATEMENT, "inbox")}
    )

    start = floor_interval(timezone.now()) + timedelta(hours=2)
    began = time.monotonic()
    event = dr_event_create(
        start=start,
        end=start + timedelta(hours=1),
        connection_point_ids=list(transformer.connection_points.values_list("pk", flat=True)),
        target_reduction_w=3000,
        actor="test",
    )
    dr_event_publish(event_pk=event.pk, actor="test")  # commits: the tasks run
    elapsed = time.monotonic() - began
    assert elapsed < 60

    # Web push: exactly one encrypted POST, to the opted-in member's browser, VAPID-signed.
    assert [c["path"] for c in push_stub.calls] == ["/push/in"]
    call = push_stub.calls[0]
    assert call["headers"]["content-encoding"] == "aes128gcm"
    assert _vapid_verified(call["headers"]["authorization"], push_stub.url)
    key, auth = keys["in"]
    message = json.loads(
        http_ece.decrypt(call["body"], private_key=key, auth_secret=auth, version="aes128gcm")
    )
    assert message["title"].startswith("Demand response")
    assert message["url"] == reverse("grid:event_detail", args=[event.pk])

    # E-mail: to the opted-in member only.
    assert [m.to for m in mailoutbox] == [[opted_in.member.user.email]]
    assert mailoutbox[0].subject == message["title"]
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 2

    # The inbox: the opted-in member sees it, unread; nobody else got one.
    client.force_login(opted_in.member.user)
    page = client.get(reverse("notifications:inbox")).content.decode()
    assert message["title"] in page
    assert "1 unread" in page
    assert list(Notification.objects.values_list("member_id", flat=True)) == [opted_in.member_id]
    client.force_login(opted_out.member.user)
    assert message["title"] not in client.get(reverse("notifications:inbox")).content.decode()


@pytest.mark.django_db
def test_a_push_service_error_is_retried_and_a_gone_subscription_is_dropped(
    push_stub, django_capture_on_commit_callbacks
):
    """410 Gone: the browser unsubscribed; the delivery fails for good and the subscription
    is removed (no retry)."""
    from apps.notifications.models import PushSubscription
    from apps.notifications.services import notification_deliver, notify

    cp = ConnectionPointFactory()
    _browser(cp.member, push_stub, "gone")
    push_stub.server.RequestHandlerClass.do_POST = _answer(410)
    with django_capture_on_commit_callbacks(execute=False):
        notify(member=cp.member, kind=Kind.METER_OFFLINE, subject="Meter offline")
    delivery = Delivery.objects.get(channel="webpush")
    assert notification_deliver(delivery_id=delivery.pk, final_attempt=False) == "failed"
    assert not PushSubscription.objects.filter(member=cp.member).exists()

    _browser(cp.member, push_stub, "flaky")
    push_stub.server.RequestHandlerClass.do_POST = _answer(503)
    with django_capture_on_commit_callbacks(execute=False):
        notify(member=cp.member, kind=Kind.METER_OFFLINE, subject="Meter offline again")
    delivery = Delivery.objects.get(channel="webpush", status="pending")
    assert notification_deliver(delivery_id=delivery.pk, final_attempt=False) == "retry"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert "503" in delivery.last_error
    assert notification_deliver(delivery_id=delivery.pk, final_attempt=True) == "failed"


def _answer(status: int):
    def do_post(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    return do_post
