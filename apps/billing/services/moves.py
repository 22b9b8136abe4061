"""Move out / move in: a dated change of occupant at a site.

`site_move` records each of the site's meters' final register reading at the move (real or
estimated and flagged), gives the meters to the incoming member from then on (the leaving member
keeps their own days: `apps.meters` records the ending occupancy), makes the incoming member the
site's occupant, ends the leaving member's supply contract on the last local day of supply and
starts the incoming member's on the move's local day. Settlement and billing then split at the
move by themselves: each member's energy is read within their own occupancy."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction

from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.billing.lock_objects import site_contracts_lock
from apps.billing.models import PaymentMethod, SiteMove, SupplyContract, SupplyTariff
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor
from apps.grid.services.sites import connection_point_occupant_set
from apps.meters.selectors import connection_point_meters
from apps.meters.services import meter_assign, meter_registers_read

MOVE_GRID_SECONDS = 900


def _local_day(at: datetime) -> date:
    return at.astimezone(ZoneInfo(settings.COOPERATIVE_TIME_ZONE)).date()


@transaction.atomic
def site_move(
    *,
    connection_point,
    leaving_member,
    incoming_member=None,
    at: datetime,
    final_reading: str,
    tariff: SupplyTariff | None = None,
    payment_method: str = PaymentMethod.DIRECT_DEBIT,
    actor: Actor = None,
) -> SiteMove:
    """Move `leaving_member` out of `connection_point` and `incoming_member` (None: nobody, the
    site stands empty) in at `at` (UTC, on the 15-minute grid). `final_reading` is "real" (the
    meters' reading of the interval before `at` must be stored and measured) or "estimated"
    (quality 8, flagged). The incoming member's contract takes `tariff` (default: the leaving
    contract's). Raises ApplicationError and writes nothing when anything does not fit."""
    if at.tzinfo is None:
        raise ApplicationError("The move time needs a time zone.", {"at": str(at)})
    at = at.astimezone(UTC)
    if int(at.timestamp()) % MOVE_GRID_SECONDS:
        raise ApplicationError(
            f"{at.isoformat()} is not on the 15-minute interval grid.", {"at": at.isoformat()}
        )
    if final_reading not in SiteMove.FinalReading.values:
        raise ApplicationError(
            "The final reading is real or estimated.", {"final_reading": final_reading}
        )
    if connection_point.member_id != leaving_member.pk:
        raise ApplicationError(
            f"Site {connection_point.code} is not occupied by member "
            f"{leaving_member.membership_number}.",
            {"connection_point": connection_point.pk},
        )
    if incoming_member is not None and incoming_member.pk == leaving_member.pk:
        raise ApplicationError("The incoming member is the leaving one.", {})
    meters = [
        m
        for m in connection_point_meters(connection_point_id=connection_point.pk, at=at)
        if m.member_id == leaving_member.pk
    ]
    if not meters:
        raise ApplicationError(
            f"Site {connection_point.code} has no meter of the leaving member at the move.",
            {"connection_point": connection_point.pk},
        )
    move_day = _local_day(at)
    last_day = _local_day(at - timedelta(microseconds=1))  # the leaving member's last day
    contracts = site_contracts_lock(
        member_id=leaving_member.pk, connection_point_id=connection_point.pk
    )
    running = [c for c in contracts if c.start <= last_day and (c.end is None or c.end >= last_day)]
    if len(running) > 1:
        raise ApplicationError(
            f"Site {connection_point.code} has {len(running)} running contracts of the leaving "
            "member; end all but one first.",
            {"contracts": [c.reference for c in running]},
        )
    ended = running[0] if running else None
    if any(c.start > last_day for c in contracts):
        raise ApplicationError(
            "The leaving member has a contract at this site starting after the move.", {}
        )
    estimated = final_reading == SiteMove.FinalReading.ESTIMATED
    reads = [meter_registers_read(meter=m, at=at, estimated=estimated, actor=actor) for m in meters]
    for meter in meters:
        meter_assign(
            meter=meter,
            member_id=incoming_member.pk if incoming_member is not None else None,
            since=at,
            actor=actor,
        )
    if ended is not None:
        ended.end = last_day
        ended.save(update_fields=["end"])
    move = SiteMove.objects.create(
        connection_point=connection_point, leaving_member=leaving_member,
        incoming_member=incoming_member, at=at, final_reading=final_reading,
        ended_contract=ended,
    )  # fmt: skip
    started = None
    if incoming_member is not None:
        connection_point_occupant_set(
            connection_point_id=connection_point.pk, member=incoming_member
        )
        new_tariff = tariff or (ended.tariff if ended is not None else None)
        if new_tariff is not None:
            started = SupplyContract.objects.create(
                reference=f"MOVE-{move.pk:06d}",
                member=incoming_member,
                connection_point=connection_point,
                tariff=new_tariff,
                start=move_day,
                payment_method=payment_method,
            )
            move.started_contract = started
            move.save(update_fields=["started_contract"])
    audit_log_write(
        event=AuditEvent.SITE_MOVED,
        actor=actor,
        target=move,
        details={
            "site": connection_point.code,
            "at": at.isoformat(),
            "leaving": leaving_member.membership_number,
            "incoming": incoming_member.membership_number if incoming_member else None,
            "final_reading": final_reading,
            "registers": {
                r.meter.serial: {
                    "import_wh": r.register_import_wh,
                    "export_wh": r.register_export_wh,
                    "quality": r.quality,
                }
                for r in reads
            },  # fmt: skip
            "ended_contract": ended.reference if ended else None,
            "contract_end": last_day.isoformat() if ended else None,
            "started_contract": started.reference if started else None,
        },
    )
    return move
