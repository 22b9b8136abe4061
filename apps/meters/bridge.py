"""The MQTT → PostgreSQL bridge (run by `python manage.py mqtt_bridge`).

Design (see docs/meters.md): paho's network loop runs in its own thread and only queues
messages. The main thread takes up to `batch_size` messages or `batch_bytes` of payload (a
gateway message carries many readings: bytes keep a batch's work bounded so that a gateway burst
spreads over every ingest worker), or whatever arrived within `batch_ms`, stores them exactly as
received in ONE transaction (COPY into the partitioned raw table), and only after the commit
sends the PUBACKs (paho manual acks). Then it hands the batch id to the ingest workers (Celery
queue "ingest") — or, with `ingest="inline"`, processes it itself. A crash between commit and
ack makes the broker re-deliver: the raw store gets the message twice and ingest treats the
second as a duplicate. A crash between commit and hand-over leaves a pending batch: the bridge
hands over its own pending batches when it starts again, and the `ingest_sweep` beat task
re-enqueues any pending batch older than 30 s (a bridge that never comes back).

Persistent MQTT v5 session (clean_start=False, session expiry), QoS 1 and a shared subscription,
so several bridges share the load and nothing is lost while one is down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from apps.meters import mqtt_client

logger = logging.getLogger(__name__)


@dataclass
class BridgeStats:
    received: int = 0
    stored: int = 0
    batches: int = 0
    status_updates: int = 0
    status_dropped: int = 0
    errors: int = 0
    started: float = field(default_factory=time.monotonic)


ADMIT, FIRST_OVER, DROP = "admit", "first_over", "drop"


class StatusLimiter:
    """At most `limit` status messages per topic serial within `window_s` seconds (a window
    opens at a serial's first message) go on to the signature check and the database. The first
    message over the limit is quarantined `rate_limited` (the flag staff see); the rest of that
    window's are dropped unread and only counted, so a device flooding its status topic costs
    the bridge a dictionary look-up per message, not a signature recovery and a write. (Per
    bridge process: with N bridges sharing the subscription a device gets up to N × limit.)"""

    def __init__(self, limit: int, window_s: float = 60.0, clock=time.monotonic) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self.windows: dict[str, list] = {}  # serial -> [window start, messages in it]
        self.swept = clock()

    def admit(self, serial: str) -> str:
        now = self.clock()
        if now - self.swept >= self.window_s:
            self._sweep(now)
        window = self.windows.get(serial)
        if window is None or now - window[0] >= self.window_s:
            self._report(serial, window)
            window = self.windows[serial] = [now, 0]
        window[1] += 1
        if window[1] <= self.limit:
            return ADMIT
        return FIRST_OVER if window[1] == self.limit + 1 else DROP

    def _sweep(self, now: float) -> None:
        for serial, window in list(self.windows.items()):
            if now - window[0] >= self.window_s:
                self._report(serial, window)
                del self.windows[serial]
        self.swept = now

    def _report(self, serial: str, window: list | None) -> None:
        if window is not None and window[1] > self.limit + 1:
            dropped = window[1] - self.limit - 1
            logger.warning("status flood from %s: %d messages dropped", serial, dropped)


class Bridge:
    def __init__(
        self,
        *,
        broker: mqtt_client.Broker,
        prefix: str,
        group: str,
        client_id: str,
        batch_size: int = 2000,
        batch_bytes: int = 1 << 20,
        batch_ms: int = 200,
        ingest: str = "celery",
        session_expiry: int = mqtt_client.SESSION_EXPIRY_S,
    ) -> None:
        self.session_expiry = session_expiry
        self.broker = broker
        self.prefix = prefix
        self.group = group
        self.client_id = client_id
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.batch_s = batch_ms / 1000
        self.ingest = ingest
        # paho's thread appends, the main thread pops: deque's append/popleft are thread-safe
        # and cost a fraction of queue.Queue's lock + condition per message.
        self.inbox: deque = deque()
        self.arrived = threading.Event()
        self.stats = BridgeStats()
        self.status_limiter = StatusLimiter(settings.METER_STATUS_PER_SERIAL_PER_MINUTE)
        self.stop_event = threading.Event()
        self.connected = threading.Event()
        self.client = mqtt_client.make_client(client_id, manual_ack=True, persistent=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.subscribed = threading.Event()
        # Stored batches whose hand-over failed (the Celery broker down): handed over again
        # after the next stored batch, or within a second when idle, rather than waiting for
        # the beat sweeper.
        self.unhanded: list[int] = []

    # paho thread ----------------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            logger.warning("bridge %s: connect refused: %s", self.client_id, reason_code)
            return
        for topic in mqtt_client.shared_subscriptions(self.prefix, self.group):
            client.subscribe(topic, qos=1)
        self.connected.set()
        logger.info(
            "bridge %s connected (session present: %s)", self.client_id, flags.session_present
        )

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self.subscribed.set()
        print(f"bridge {self.client_id} subscribed", flush=True)  # noqa: T201 - readiness line

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        logger.warning("bridge %s disconnected: %s", self.client_id, reason_code)

    def _on_message(self, client, userdata, message):
        self.inbox.append((message.topic, message.payload, message.mid, message.qos))
        self.arrived.set()

    # main thread ----------------------------------------------------------------------------
    def start(self) -> None:
        mqtt_client.connect_client(
            self.client, self.broker, persistent=True, session_expiry=self.session_expiry
        )
        self.client.loop_start()

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        self._resume_pending()
        self.start()
        try:
            while not self.stop_event.is_set():
                batch = self._collect()
                if batch:
                    self._handle(batch)
                if self.unhanded:
                    self._hand_over_again()
        finally:
            self.client.loop_stop()
            self.client.disconnect()

    def _collect(self) -> list:
        """Up to `batch_size` messages or `batch_bytes` of payload (at least one message), or
        what arrived within `batch_ms` of the first one."""
        if not self.inbox:
            self.arrived.wait(0.5)
            self.arrived.clear()
            if not self.inbox:
                return []
        batch: list = []
        size = 0
        deadline = time.monotonic() + self.batch_s
        inbox = self.inbox
        while len(batch) < self.batch_size and size < self.batch_bytes:
            try:
                item = inbox[0]
            except IndexError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.002)
                continue
            if batch and size + len(item[1]) > self.batch_bytes:
                break  # the next message starts the next batch
            batch.append(inbox.popleft())
            size += len(item[1])
        return batch

    def _handle(self, batch: list) -> None:
        from apps.meters.readings.pipeline import raw_batch_store
        from apps.meters.services import meter_status_flood_record, meter_status_record

        self.stats.received += len(batch)
        readings = [(t, p) for t, p, _, _ in batch if t.endswith("/readings")]
        statuses = []  # (topic, payload, admission), admitted once (a retry must not count again)
        for t, p, _, _ in batch:
            if t.endswith("/status"):
                admission = self.status_limiter.admit(t.rsplit("/", 2)[-2])
                if admission == DROP:
                    self.stats.status_dropped += 1
                else:
                    statuses.append((t, p, admission))
        batch_id = None
        stored = not readings
        done = 0  # status messages recorded (a retry after a database outage resumes there)
        while True:
            try:
                close_old_connections()
                if not stored:
                    batch_id = raw_batch_store(messages=readings, bridge=self.client_id)
                    stored = True
                while done < len(statuses):
                    topic, payload, admission = statuses[done]
                    try:
                        if admission == FIRST_OVER:
                            meter_status_flood_record(
                                topic=topic, payload=payload, limit=self.status_limiter.limit
                            )
                        # Signed and for its topic's meter, else quarantined with the reason.
                        elif meter_status_record(topic=topic, payload=payload):
                            self.stats.status_updates += 1
                    except DatabaseError:
                        raise
                    except Exception:  # noqa: BLE001 - one odd status never stops the bridge
                        logger.exception("status message on %s not recorded", topic)
                    done += 1
                break
            except Exception:  # noqa: BLE001 - database down: keep the messages, retry (no ack)
                self.stats.errors += 1
                logger.exception("bridge %s: storing a batch failed; retrying", self.client_id)
                from django.db import connection

                connection.close()
                time.sleep(1)
                if self.stop_event.is_set():
                    return
        # Durably stored: now acknowledge to the broker (QoS 1 is all we subscribe with).
        self.client.ack_many([mid for _, _, mid, qos in batch if qos == 1])
        self.stats.stored += len(readings)
        self.stats.batches += 1
        if batch_id is not None and not self._hand_over(batch_id):
            self.unhanded.append(batch_id)

    def _hand_over_again(self) -> None:
        """Hand over the batches whose hand-over failed, oldest first, until one fails again."""
        while self.unhanded and self._hand_over(self.unhanded[0]):
            self.unhanded.pop(0)

    def _resume_pending(self) -> None:
        """Hand over the batches this bridge stored but had not handed over when it stopped
        (killed between the raw commit and the hand-over), before taking new messages."""
        from apps.meters.readings.pipeline import pending_batches

        try:
            close_old_connections()
            pending = pending_batches(older_than=timedelta(0), bridge=self.client_id)
        except Exception:  # noqa: BLE001 - database down: the sweeper hands them over later
            logger.exception("bridge %s: looking up pending batches failed", self.client_id)
            return
        for batch_id in pending:
            logger.info("bridge %s: handing over pending batch %s", self.client_id, batch_id)
            if not self._hand_over(batch_id):
                self.unhanded.append(batch_id)

    def _hand_over(self, batch_id: int) -> bool:
        """Process or enqueue a stored batch; False if that failed (it stays pending)."""
        from apps.meters.readings.pipeline import reading_batch_ingest
        from apps.meters.tasks import ingest_batch

        if self.ingest == "inline":
            try:
                reading_batch_ingest(batch_id=batch_id)
            except Exception:  # noqa: BLE001 - the sweeper retries pending batches
                logger.exception("inline ingest of batch %s failed", batch_id)
            return True  # a failed inline ingest is the sweeper's, not a hand-over to repeat
        try:
            ingest_batch.delay(batch_id)
        except Exception:  # noqa: BLE001 - retried after the next batch; the sweeper too
            logger.exception("enqueueing batch %s failed", batch_id)
            return False
        return True
