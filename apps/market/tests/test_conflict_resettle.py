"""An accepted reading conflict is a correction like any late one: the settlement scan re-settles
the run it falls in, and the difference becomes adjustment lines (docs/market.md)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.tests.factories import StaffUserFactory
from apps.market.models import SettlementLine, SettlementRun
from apps.market.services.settlement import settlement_corrections_scan
from apps.market.tests.factories import MemberFactory, make_trade
from apps.meters.models import Conflict
from apps.meters.services import ConflictDecision, conflict_resolve, device_messages_deliver
from apps.meters.signing import SignedFields, sign_reading
from apps.meters.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db


def _message(meter, start, import_wh: int) -> tuple[str, bytes]:
    seq = int(start.timestamp()) // 900
    fields = SignedFields(meter.serial, seq, int(start.timestamp()), 900, import_wh, 0, 0, 0, 0)
    doc = {"v": 1, "serial": meter.serial, "seq": seq, "start": int(start.timestamp()),
           "interval": 900, "import_wh": import_wh, "export_wh": 0, "register_import_wh": 0,
           "register_export_wh": 0, "status": 0,
           "sig": "0x" + sign_reading(meter.test_key, fields).hex()}  # fmt: skip
    return "test/readings", json.dumps(doc).encode()


def test_an_accepted_conflict_re_settles_its_run_into_adjustment_lines():
    member = MemberFactory()
    trade = make_trade(member, settled=True)
    run = trade.clearing.run
    meter = MeterFactory(member=member)
    device_messages_deliver(messages=[_message(meter, trade.interval_start, 500)])
    after = trade.interval_start + timedelta(days=2)
    SettlementRun.objects.filter(pk=run.pk).update(settled_at=timezone.now() - timedelta(days=1))
    settlement_corrections_scan(now=after)  # the lines now match the stored readings
    assert settlement_corrections_scan(now=after) == 0
    lines_before = set(SettlementLine.objects.values_list("pk", flat=True))

    device_messages_deliver(messages=[_message(meter, trade.interval_start, 800)])
    conflict = Conflict.objects.get(meter=meter)
    assert settlement_corrections_scan(now=after) == 0  # an open conflict changes nothing
    conflict_resolve(conflict=conflict, decision=ConflictDecision.ACCEPT,
                     reason="re-read on site", actor=StaffUserFactory())  # fmt: skip
    assert settlement_corrections_scan(now=after) == 1
    new = SettlementLine.objects.exclude(pk__in=lines_before).get()
    assert (new.run, new.member, new.interval_start) == (run, member, trade.interval_start)
    assert new.is_adjustment and new.reason == "corrected meter data"
    assert (new.import_wh, new.grid_import_wh) == (300, 300)  # 800 Wh now, 500 Wh settled
