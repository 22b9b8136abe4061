"""Tariff versions: created whole, checked, audited (staff, one by one or from an import file)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Q

from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor
from apps.market.models import Tariff

FEE_AND_LOSS_FIELDS = (
    "fee_same_transformer",
    "fee_same_feeder",
    "fee_across_feeders",
    "loss_same_transformer",
    "loss_same_feeder",
    "loss_across_feeders",
)


@transaction.atomic
def tariff_create(
    *,
    name: str,
    valid_from: datetime,
    valid_to: datetime | None,
    retail_price: Decimal,
    feed_in_price: Decimal,
    vat_rate: Decimal = Decimal("0.19"),
    fees_and_losses: dict[str, Decimal] | None = None,
    actor: Actor = None,
) -> Tariff:
    """A new tariff version. Its validity may not overlap another version's (the market reads
    the one tariff valid at an instant); prices per kWh, retail above feed-in, VAT 0..1.

    Raises ApplicationError naming the field, and writes nothing then."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ApplicationError("The name must be 1 to 100 characters.", {"name": name})
    if valid_from.tzinfo is None or (valid_to is not None and valid_to.tzinfo is None):
        raise ApplicationError("Validity dates need a time zone.", {"valid_from": valid_from})
    if valid_to is not None and valid_to <= valid_from:
        raise ApplicationError("valid_to must be after valid_from.", {"valid_to": valid_to})
    if not Decimal("0") <= feed_in_price < retail_price <= Decimal("10"):
        raise ApplicationError(
            "Prices per kWh: 0 ≤ feed-in < retail ≤ 10.", {"retail_price": retail_price}
        )
    if not Decimal("0") <= vat_rate <= Decimal("1"):
        raise ApplicationError(
            "The VAT rate is a fraction between 0 and 1.", {"vat_rate": vat_rate}
        )
    extra = dict(fees_and_losses or {})
    for field, value in extra.items():
        if field not in FEE_AND_LOSS_FIELDS or not Decimal("0") <= value <= Decimal("1"):
            raise ApplicationError(f"{field} must be between 0 and 1.", {field: value})
    overlapping = Tariff.objects.filter(Q(valid_to__isnull=True) | Q(valid_to__gt=valid_from))
    if valid_to is not None:
        overlapping = overlapping.filter(valid_from__lt=valid_to)
    clash = overlapping.order_by("valid_from").first()
    if clash is not None:
        raise ApplicationError(
            f"The validity overlaps the tariff {clash} (end it first, or start after it).",
            {"valid_from": valid_from},
        )
    tariff = Tariff.objects.create(name=name, valid_from=valid_from, valid_to=valid_to,
                                   retail_price=retail_price, feed_in_price=feed_in_price,
                                   vat_rate=vat_rate, **extra)  # fmt: skip
    audit_log_write(event=AuditEvent.TARIFF_CREATED, actor=actor, target=tariff,
                    details={"name": name, "valid_from": valid_from.isoformat(),
                             "retail_price": str(retail_price),
                             "feed_in_price": str(feed_in_price)})  # fmt: skip
    return tariff
