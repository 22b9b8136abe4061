"""Local energy market: tariffs, preferences, orders, clearing, settlement and statements.

Lifecycles are explicit TextChoices plus a TRANSITIONS table, moved by apps.core.state.StatusModel.
Energy is integer Wh, money Decimal, prices per kWh.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from apps.core.state import StatusModel

PRICE = {"max_digits": 9, "decimal_places": 6}
MONEY = {"max_digits": 14, "decimal_places": 6, "default": Decimal("0")}
FACTOR = {
    "max_digits": 7,
    "decimal_places": 6,
    "validators": [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("0.5"))],
}


class Mechanism(models.TextChoices):
    PAY_AS_CLEAR = "pay_as_clear", "Pay-as-clear double auction"
    SDR = "sdr", "Supply-demand ratio"
    MMR = "mmr", "Mid-market rate"


class MarketSettings(models.Model):
    """The cooperative's market configuration (one row, pk=1; see `market_settings_get`)."""

    mechanism = models.CharField(
        max_length=14, choices=Mechanism.choices, default=Mechanism.PAY_AS_CLEAR
    )
    gate_closure_minutes = models.PositiveIntegerField(
        default=5, help_text="Orders for an interval close this many minutes before it starts."
    )
    capacity_share = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=Decimal("1.000"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text="Share of transformer/feeder capacity the P2P market may use.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "market settings"

    def __str__(self) -> str:
        return f"market: {self.get_mechanism_display()}"


class Tariff(models.Model):
    """Grid prices, network fees and loss factors, versioned by validity [valid_from, valid_to)."""

    name = models.CharField(max_length=100)
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)
    retail_price = models.DecimalField(**PRICE, help_text="Grid import price per kWh (λb).")
    feed_in_price = models.DecimalField(**PRICE, help_text="Grid export price per kWh (λs).")
    fee_same_transformer = models.DecimalField(**PRICE, default=Decimal("0.010"))
    fee_same_feeder = models.DecimalField(**PRICE, default=Decimal("0.025"))
    fee_across_feeders = models.DecimalField(**PRICE, default=Decimal("0.050"))
    loss_same_transformer = models.DecimalField(**FACTOR, default=Decimal("0.005"))
    loss_same_feeder = models.DecimalField(**FACTOR, default=Decimal("0.020"))
    loss_across_feeders = models.DecimalField(**FACTOR, default=Decimal("0.040"))
    vat_rate = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.19"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
    )

    class Meta:
        ordering = ["-valid_from"]
        constraints = [
            models.CheckConstraint(
                condition=Q(retail_price__gt=models.F("feed_in_price")),
                name="market_tariff_retail_above_feed_in",
            ),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=models.F("valid_from")),
                name="market_tariff_valid_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} from {self.valid_from:%Y-%m-%d}"

    @property
    def fees(self) -> tuple[Decimal, Decimal, Decimal]:
        return (self.fee_same_transformer, self.fee_same_feeder, self.fee_across_feeders)

    @property
    def losses(self) -> tuple[Decimal, Decimal, Decimal]:
        return (self.loss_same_transformer, self.loss_same_feeder, self.loss_across_feeders)

    def clean(self) -> None:
        errors = {}
        if self.retail_price is not None and self.feed_in_price is not None:
            if self.retail_price <= self.feed_in_price:
                errors["retail_price"] = "The retail price must be above the feed-in price."
            if self.feed_in_price <= 0:
                errors["feed_in_price"] = "The feed-in price must be positive."
        if self.valid_to and self.valid_from and self.valid_to <= self.valid_from:
            errors["valid_to"] = "The validity must end after it starts."
        if self.valid_from:
            overlap = Tariff.objects.exclude(pk=self.pk).filter(
                Q(valid_to__isnull=True) | Q(valid_to__gt=self.valid_from)
            )
            if self.valid_to:
                overlap = overlap.filter(valid_from__lt=self.valid_to)
            if overlap.exists():
                errors["valid_from"] = "The validity overlaps another tariff version."
        if errors:
            raise ValidationError(errors)


class TradingPreference(models.Model):
    """A member's standing preferences; automatic orders are generated from them."""

    member = models.OneToOneField(
        "accounts.Member", on_delete=models.CASCADE, related_name="trading_preference"
    )
    auto_trade = models.BooleanField(default=True)
    max_buy_price = models.DecimalField(**PRICE, help_text="Per kWh delivered, fees included.")
    min_sell_price = models.DecimalField(**PRICE, help_text="Per kWh injected.")
    green_only = models.BooleanField(default=False)
    preferred_partners = models.ManyToManyField(
        "accounts.Member", blank=True, related_name="preferred_by"
    )
    battery_reserve_percent = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(100)]
    )
    # Opt-in: other members may choose this member as a preferred partner (they see only the
    # membership number, never the member's status or assets).
    partner_selectable = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"preferences of {self.member}"


class Order(StatusModel, models.Model):
    class Side(models.TextChoices):
        BID = "bid", "Buy"
        OFFER = "offer", "Sell"

    class Origin(models.TextChoices):
        AUTO = "auto", "Automatic (preferences)"
        MANUAL = "manual", "Manual"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        MATCHED = "matched", "Matched"
        PARTIAL = "partial", "Partially matched"
        UNMATCHED = "unmatched", "Not matched"
        CANCELLED = "cancelled", "Cancelled"

    TRANSITIONS = {
        Status.OPEN: frozenset(
            {Status.MATCHED, Status.PARTIAL, Status.UNMATCHED, Status.CANCELLED}
        ),
        Status.MATCHED: frozenset(),
        Status.PARTIAL: frozenset(),
        Status.UNMATCHED: frozenset(),
        Status.CANCELLED: frozenset(),
    }

    member = models.ForeignKey("accounts.Member", on_delete=models.PROTECT, related_name="orders")
    interval_start = models.DateTimeField(db_index=True)
    side = models.CharField(max_length=5, choices=Side.choices)
    wh = models.PositiveBigIntegerField()
    limit_price = models.DecimalField(**PRICE)
    green = models.BooleanField(
        default=False, help_text="Offer: renewable energy. Bid: accept renewable energy only."
    )
    origin = models.CharField(max_length=6, choices=Origin.choices, default=Origin.MANUAL)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.OPEN)
    matched_wh = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["interval_start", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "interval_start"],
                condition=Q(status="open"),
                name="market_order_one_open_per_interval",
            ),
            models.CheckConstraint(condition=Q(wh__gt=0), name="market_order_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.wh} Wh @ {self.limit_price} ({self.interval_start:%H:%M})"


class SettlementRun(StatusModel, models.Model):
    """One settlement batch over [period_start, period_end): one on-chain transaction."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLEARED = "cleared", "Cleared"
        METERED = "metered", "Metered"
        SETTLED = "settled", "Settled"
        ANCHORED = "anchored", "Anchored"

    TRANSITIONS = {
        Status.OPEN: frozenset({Status.CLEARED}),
        Status.CLEARED: frozenset({Status.METERED}),
        Status.METERED: frozenset({Status.SETTLED}),
        Status.SETTLED: frozenset({Status.ANCHORED}),
        Status.ANCHORED: frozenset(),
    }

    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    mechanism = models.CharField(
        max_length=14, choices=Mechanism.choices, default=Mechanism.PAY_AS_CLEAR
    )
    trades_root = models.CharField(max_length=66, blank=True)
    trade_count = models.PositiveIntegerField(default=0)
    chain_intent_id = models.BigIntegerField(null=True, blank=True)
    # What the run's netted batch sent on chain per member: {member id: {"address", "delta_minor",
    # "adjustments"}} — its own lines plus the adjustments it carried (SettlementLine.chain_run).
    chain_deltas = models.JSONField(default=dict, blank=True)
    approved_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cleared_at = models.DateTimeField(null=True, blank=True)
    metered_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    anchored_at = models.DateTimeField(null=True, blank=True)
    corrections_checked_at = models.DateTimeField(null=True, blank=True)
    # Community totals against the grid (budget balance is checked when settling).
    members_pay = models.DecimalField(**MONEY)
    members_receive = models.DecimalField(**MONEY)
    grid_import_cost = models.DecimalField(**MONEY)
    grid_export_revenue = models.DecimalField(**MONEY)
    network_fees = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["-period_start"]
        constraints = [
            models.UniqueConstraint(fields=["period_start"], name="market_run_unique_period")
        ]

    def __str__(self) -> str:
        return f"settlement {self.pk} {self.period_start:%Y-%m-%d %H:%M} [{self.status}]"


class ClearingResult(models.Model):
    """The clearing of one delivery interval."""

    run = models.ForeignKey(SettlementRun, on_delete=models.PROTECT, related_name="clearings")
    interval_start = models.DateTimeField(unique=True)
    mechanism = models.CharField(max_length=14, choices=Mechanism.choices)
    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, related_name="+")
    price = models.DecimalField(**PRICE, null=True, blank=True)
    bid_wh = models.BigIntegerField(default=0)
    offer_wh = models.BigIntegerField(default=0)
    traded_wh = models.BigIntegerField(default=0)  # delivered to buyers
    loss_wh = models.BigIntegerField(default=0)
    curtailed_wh = models.BigIntegerField(default=0)
    order_count = models.PositiveIntegerField(default=0)
    duration_ms = models.FloatField(default=0)
    cleared_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-interval_start"]

    def __str__(self) -> str:
        return f"clearing {self.interval_start:%Y-%m-%d %H:%M} @ {self.price}"


class Trade(models.Model):
    class Distance(models.IntegerChoices):
        LOCAL = 0, "same transformer"
        FEEDER = 1, "same feeder"
        REGIONAL = 2, "across feeders"

    clearing = models.ForeignKey(ClearingResult, on_delete=models.PROTECT, related_name="trades")
    interval_start = models.DateTimeField(db_index=True)
    seller = models.ForeignKey("accounts.Member", on_delete=models.PROTECT, related_name="sales")
    buyer = models.ForeignKey("accounts.Member", on_delete=models.PROTECT, related_name="purchases")
    seller_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="+")
    buyer_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="+")
    distance = models.PositiveSmallIntegerField(choices=Distance.choices)
    seller_zone = models.CharField(max_length=100, blank=True)
    buyer_zone = models.CharField(max_length=100, blank=True)
    wh_from_seller = models.BigIntegerField()
    wh_delivered = models.BigIntegerField()
    loss_wh = models.BigIntegerField()
    price = models.DecimalField(**PRICE)
    fee_per_kwh = models.DecimalField(**PRICE)
    green = models.BooleanField(default=False)

    class Meta:
        ordering = ["interval_start", "id"]

    def __str__(self) -> str:
        return f"trade {self.pk}: {self.wh_delivered} Wh {self.seller_id}→{self.buyer_id}"

    @property
    def energy_amount(self) -> Decimal:
        return self.price * self.wh_from_seller / 1000

    @property
    def fee_amount(self) -> Decimal:
        return self.fee_per_kwh * self.wh_from_seller / 1000

    @property
    def buyer_amount(self) -> Decimal:
        return self.energy_amount + self.fee_amount


class Statement(StatusModel, models.Model):
    """A member's monthly statement. Issued statements are immutable."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        REVIEWED = "reviewed", "Reviewed"
        ISSUED = "issued", "Issued"

    TRANSITIONS = {
        Status.DRAFT: frozenset({Status.REVIEWED}),
        Status.REVIEWED: frozenset({Status.ISSUED, Status.DRAFT}),
        Status.ISSUED: frozenset(),
    }

    member = models.ForeignKey("accounts.Member", on_delete=models.PROTECT, related_name="+")
    month = models.DateField(help_text="First day of the month (cooperative time zone).")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    number = models.CharField(max_length=30, unique=True)
    vat_rate = models.DecimalField(max_digits=5, decimal_places=4)
    totals = models.JSONField(default=dict)
    reviewed_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    issued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-month", "member_id"]
        constraints = [
            models.UniqueConstraint(fields=["member", "month"], name="market_statement_unique")
        ]

    def __str__(self) -> str:
        return f"statement {self.number} [{self.status}]"


class SettlementLine(models.Model):
    """One member's settlement of one interval; or, with `is_adjustment`, a correction delta.

    Amounts are positive when the member pays, negative when the member receives.
    """

    run = models.ForeignKey(SettlementRun, on_delete=models.PROTECT, related_name="lines")
    # No index of its own: the (member, interval_start) index below serves lookups by member,
    # and every index is one more write per line when a statement takes the month's lines.
    member = models.ForeignKey(
        "accounts.Member",
        on_delete=models.PROTECT,
        related_name="settlement_lines",
        db_index=False,
    )
    interval_start = models.DateTimeField()
    is_adjustment = models.BooleanField(default=False)
    reason = models.CharField(max_length=200, blank=True)
    statement = models.ForeignKey(
        Statement, null=True, blank=True, on_delete=models.PROTECT, related_name="lines"
    )
    # For an adjustment: the settlement run whose netted on-chain batch carried it (the next one
    # anchored after the adjustment was made); None until then. A line that is not an adjustment
    # goes on chain with its own run.
    chain_run = models.ForeignKey(
        SettlementRun,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="chained_adjustments",
    )
    import_wh = models.BigIntegerField(default=0)  # metered
    export_wh = models.BigIntegerField(default=0)
    bought_wh = models.BigIntegerField(default=0)  # P2P delivered to the member
    sold_wh = models.BigIntegerField(default=0)  # P2P injected by the member
    grid_import_wh = models.BigIntegerField(default=0)
    grid_export_wh = models.BigIntegerField(default=0)
    loss_wh = models.BigIntegerField(default=0)
    p2p_purchase = models.DecimalField(**MONEY)
    p2p_sale = models.DecimalField(**MONEY)  # negative: credited
    network_fee = models.DecimalField(**MONEY)
    grid_import = models.DecimalField(**MONEY)
    grid_export = models.DecimalField(**MONEY)  # negative: credited
    # The same metered energy at grid prices only (for "savings vs grid-only").
    grid_only_charge = models.DecimalField(**MONEY)
    grid_only_credit = models.DecimalField(**MONEY)  # negative
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["interval_start", "member_id", "id"]
        indexes = [models.Index(fields=["member", "interval_start"])]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "member", "interval_start"],
                condition=Q(is_adjustment=False),
                name="market_line_one_per_interval",
            )
        ]

    AMOUNT_FIELDS = ("p2p_purchase", "p2p_sale", "network_fee", "grid_import", "grid_export")
    ENERGY_FIELDS = (
        "import_wh",
        "export_wh",
        "bought_wh",
        "sold_wh",
        "grid_import_wh",
        "grid_export_wh",
        "loss_wh",
    )

    def __str__(self) -> str:
        kind = "adjustment" if self.is_adjustment else "line"
        return f"{kind} {self.member_id} {self.interval_start:%Y-%m-%d %H:%M}"

    @property
    def net_amount(self) -> Decimal:
        return sum((getattr(self, f) for f in self.AMOUNT_FIELDS), Decimal(0))
