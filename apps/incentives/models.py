"""Granular certificates, shared assets, green rewards and emission factors.

Certificates follow EnergyTag's granular certificate fields and Energy Web Origin's lifecycle
(issue → transfer → claim or cancel); see docs/domain.md, "Granular certificates".
"""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from apps.core.state import StatusModel


class EnergySource(models.TextChoices):
    SOLAR = "solar", "Solar PV"
    WIND = "wind", "Wind"
    HYDRO = "hydro", "Hydro"
    BIOMASS = "biomass", "Biomass"


class Certificate(StatusModel, models.Model):
    """A holding of a granular certificate: Wh serials [range_start, range_end) of one token id.

    One token id stands for one producing device and one production hour (ERC-1155 id on
    EnergyToken). A transfer or a partial claim never edits history: the holding is marked
    `transferred` (or split) and children carry the parts, each pointing at its `parent`.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        TRANSFERRED = "transferred", "Transferred"
        CLAIMED = "claimed", "Claimed"
        CANCELLED = "cancelled", "Cancelled"

    TRANSITIONS = {
        Status.ACTIVE: frozenset({Status.TRANSFERRED, Status.CLAIMED, Status.CANCELLED}),
        Status.TRANSFERRED: frozenset(),
        Status.CLAIMED: frozenset(),
        Status.CANCELLED: frozenset(),
    }

    # EnergyToken id = device id << 64 | hour start (apps.chain.intents.token_id): uint256.
    token_id = models.DecimalField(max_digits=78, decimal_places=0, db_index=True)
    range_start = models.BigIntegerField()
    range_end = models.BigIntegerField()
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.ACTIVE, db_index=True
    )
    owner = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="certificates"
    )
    device = models.ForeignKey("meters.Meter", on_delete=models.PROTECT, related_name="+")
    energy_source = models.CharField(max_length=10, choices=EnergySource.choices)
    production_start = models.DateTimeField(db_index=True)
    production_end = models.DateTimeField()
    country = models.CharField(max_length=2)
    issuing_body = models.CharField(max_length=120)
    market_zone = models.CharField(max_length=20)
    support_received = models.CharField(max_length=60, default="none")
    emission_factor = models.DecimalField(
        max_digits=8, decimal_places=2, help_text="g CO2e per kWh of the certified energy."
    )
    beneficiary = models.CharField(max_length=200, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    cancelled_reason = models.CharField(max_length=200, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    shared_asset = models.ForeignKey(
        "incentives.SharedAsset",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="certificates",
    )
    # Lineage: the trade a transfer came from, and the validated intervals the energy came from.
    trade_ref = models.CharField(max_length=80, blank=True, db_index=True)
    settlement_ref = models.CharField(max_length=80, blank=True)
    source_intervals = models.JSONField(default=list, encoder=DjangoJSONEncoder, blank=True)
    chain_intent_ref = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["production_start", "token_id", "range_start", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(range_end__gt=models.F("range_start")),
                name="certificate_range_not_empty",
            ),
        ]
        indexes = [models.Index(fields=["owner", "status", "production_start"])]

    def __str__(self) -> str:
        return f"GC {self.token_id}[{self.range_start},{self.range_end}) {self.status}"

    @property
    def wh(self) -> int:
        return self.range_end - self.range_start


class CertificateTransfer(StatusModel, models.Model):
    """A seller → buyer certificate obligation created by P2P settlement (one per trade).

    Applied at once when the seller's certificates for the hour exist, otherwise when the hour is
    issued. `transferred_wh` < `wh` after application means the seller had too few certificates
    (e.g. energy from a battery) — the shortfall is shown, never invented.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (hour not yet issued)"
        APPLIED = "applied", "Applied"

    TRANSITIONS = {Status.PENDING: frozenset({Status.APPLIED}), Status.APPLIED: frozenset()}

    trade_ref = models.CharField(max_length=80, unique=True)
    settlement_ref = models.CharField(max_length=80, blank=True)
    seller = models.ForeignKey("accounts.Member", on_delete=models.PROTECT, related_name="+")
    buyer = models.ForeignKey("accounts.Member", on_delete=models.PROTECT, related_name="+")
    hour_start = models.DateTimeField(db_index=True)
    wh = models.BigIntegerField()
    transferred_wh = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["hour_start", "id"]


class SharedAsset(models.Model):
    """A community-owned producing asset (e.g. a shared PV plant) measured by one meter.

    Its meter belongs to the plant's settlement account (the cooperative's own member account),
    so market settlement sells its output (P2P or at the feed-in price); each month the settled
    revenue (`revenue_share`) or the settled kWh (`generation_kwh`, valued at each shareholder's
    supply tariff on their invoice) is allocated to the shareholders pro rata.
    """

    class Mode(models.TextChoices):
        REVENUE_SHARE = "revenue_share", "Revenue share (money credit)"
        GENERATION_KWH = "generation_kwh", "Generation kWh (kWh deducted from consumption)"

    name = models.CharField(max_length=120, unique=True)
    meter = models.OneToOneField(
        "meters.Meter", on_delete=models.PROTECT, related_name="shared_asset"
    )
    support_received = models.CharField(max_length=60, default="none")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.REVENUE_SHARE)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AssetShare(models.Model):
    """One shareholder's share of a shared asset, in parts per million (100 % = 1,000,000).

    `carry` is the sub-Wh remainder carried forward between periods, in units of 1/1,000,000 Wh
    (see apps/incentives/allocation.py); it is reset when the share table changes.
    """

    asset = models.ForeignKey(SharedAsset, on_delete=models.CASCADE, related_name="shares")
    member = models.ForeignKey("accounts.Member", on_delete=models.PROTECT, related_name="+")
    share_ppm = models.PositiveIntegerField()
    carry = models.BigIntegerField(default=0)
    revenue_carry = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["asset", "member"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "member"], name="asset_share_unique"),
        ]

    @property
    def percent(self):
        from decimal import Decimal

        return Decimal(self.share_ppm) / Decimal(10_000)


class SharedAssetPeriod(models.Model):
    """One month of a shared asset, settled and allocated once: the plant's settled output and
    revenue, and (in its credits) each shareholder's part, which sum exactly to it."""

    asset = models.ForeignKey(SharedAsset, on_delete=models.PROTECT, related_name="periods")
    month = models.DateField(help_text="First day of the month (UTC).")
    mode = models.CharField(max_length=16, choices=SharedAsset.Mode.choices)
    produced_wh = models.BigIntegerField(help_text="Settled export of the plant's meter.")
    revenue_cents = models.BigIntegerField(help_text="Net money settled for the output.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-month", "asset"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "month"], name="shared_asset_period_once"),
        ]


class SharedAssetCredit(models.Model):
    """A shareholder's part of one month of a shared asset: Wh (generation kWh) or cents."""

    period = models.ForeignKey(SharedAssetPeriod, on_delete=models.CASCADE, related_name="credits")
    member = models.ForeignKey("accounts.Member", on_delete=models.PROTECT, related_name="+")
    share_ppm = models.PositiveIntegerField()
    wh = models.BigIntegerField(default=0)
    amount_cents = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["period", "member"]
        constraints = [
            models.UniqueConstraint(fields=["period", "member"], name="shared_asset_credit_once"),
        ]


class EmissionFactor(models.Model):
    """Grid emission factor per market zone and validity period (GHG Protocol Scope 2)."""

    class Basis(models.TextChoices):
        LOCATION = "location", "Location-based (grid average)"
        RESIDUAL_MIX = "residual_mix", "Residual mix (market-based, uncovered consumption)"

    market_zone = models.CharField(max_length=20)
    basis = models.CharField(max_length=12, choices=Basis.choices)
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True, help_text="Exclusive; empty = open.")
    g_co2e_per_kwh = models.DecimalField(max_digits=8, decimal_places=2)
    source = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["market_zone", "basis", "-valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["market_zone", "basis", "valid_from"], name="emission_factor_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.market_zone} {self.basis} from {self.valid_from}: {self.g_co2e_per_kwh}"


class RewardRule(models.Model):
    """Reward per kWh for local renewable consumption, demand-response performance or a
    member's own renewable production (certified Wh of their own plants, per day)."""

    class Kind(models.TextChoices):
        LOCAL_RENEWABLE = "local_renewable", "Local renewable energy consumed"
        DR_PERFORMANCE = "dr_performance", "Demand-response performance"
        OWN_PRODUCTION = "own_production", "Own renewable production"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    tokens_per_kwh = models.PositiveIntegerField(
        help_text="Reward tokens (whole units) per kWh; amounts are floored per member and period."
    )
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["kind", "-valid_from"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.tokens_per_kwh}/kWh from {self.valid_from:%Y-%m-%d}"


class Reward(models.Model):
    """Reward tokens granted to a member for one period (minted through RenewableIncentive)."""

    member = models.ForeignKey("accounts.Member", on_delete=models.PROTECT, related_name="rewards")
    rule = models.ForeignKey(RewardRule, on_delete=models.PROTECT, related_name="rewards")
    kind = models.CharField(max_length=20, choices=RewardRule.Kind.choices)
    period_ref = models.CharField(max_length=80, help_text="Settlement run or DR event reference.")
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    basis_wh = models.BigIntegerField()
    tokens = models.BigIntegerField()
    chain_intent_ref = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "kind", "period_ref"], name="reward_once_per_period"
            ),
        ]


class ClaimInstruction(models.Model):
    """A member's standing instruction to claim their certificates against their own consumption.

    Opt-out: a member without a row is claimed for (`auto_claim` defaults to on). The hourly
    auto-claim (`certificates_auto_claim`) claims each certificate only against the member's
    validated consumption of the certificate's own production hour.
    """

    member = models.OneToOneField(
        "accounts.Member", on_delete=models.CASCADE, related_name="claim_instruction"
    )
    auto_claim = models.BooleanField(
        default=True,
        help_text="Claim my certificates hourly against my own consumption (on by default).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.member_id}: auto-claim {'on' if self.auto_claim else 'off'}"


class RewardAccount(models.Model):
    """A member's redeemable reward balance row: the tokens they have redeemed so far. Every
    redemption locks this row first, so two concurrent redemptions cannot both spend the same
    tokens (redeemable = tokens granted on chain − `redeemed_tokens`)."""

    member = models.OneToOneField(
        "accounts.Member", on_delete=models.PROTECT, related_name="reward_account"
    )
    redeemed_tokens = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)


class Redemption(StatusModel, models.Model):
    """Reward tokens a member redeemed for a credit on their next invoice.

    requested → burned (the outbox's `reward_redeem` intent burned them from the member's accrued
    rewards on RenewableIncentive, once per redemption id) → credited (a billing run put them on
    the invoice of `credited_month`, at the tariff's credit per token).
    """

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested (burn queued on chain)"
        BURNED = "burned", "Burned on chain"
        CREDITED = "credited", "Credited on an invoice"

    TRANSITIONS = {
        Status.REQUESTED: frozenset({Status.BURNED}),
        Status.BURNED: frozenset({Status.CREDITED}),
        Status.CREDITED: frozenset(),
    }

    member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="redemptions"
    )
    tokens = models.BigIntegerField()
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.REQUESTED, db_index=True
    )
    chain_intent_ref = models.CharField(max_length=80, blank=True)
    requested_at = models.DateTimeField(default=timezone.now)
    burned_at = models.DateTimeField(null=True, blank=True)
    credited_month = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(tokens__gt=0), name="redemption_tokens_positive"
            ),
        ]
