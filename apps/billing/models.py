"""Billing: supply contracts and tariffs, monthly billing runs, invoices and credit notes.

Money is Decimal in the cooperative's one currency (settings.BILLING_CURRENCY): unit prices per
kWh with 6 decimals, invoice amounts in cents (2 decimals). Energy is integer Wh. Lifecycles are
explicit TextChoices plus a TRANSITIONS table; statuses change only through
`StatusModel.transition_to` (apps.core.state).
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from apps.core.state import StatusModel

PRICE = {"max_digits": 9, "decimal_places": 6, "default": Decimal("0")}
AMOUNT = {"max_digits": 14, "decimal_places": 2, "default": Decimal("0")}
RATE = {
    "max_digits": 5,
    "decimal_places": 4,
    "validators": [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
}


class SupplyTariff(models.Model):
    """A named supply tariff; its prices live in versions with validity dates."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class SupplyTariffVersion(models.Model):
    """The prices of a tariff valid on the days [valid_from, valid_to) (cooperative dates)."""

    tariff = models.ForeignKey(SupplyTariff, on_delete=models.PROTECT, related_name="versions")
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)
    energy_price = models.DecimalField(**PRICE, help_text="Residual grid supply, per kWh.")
    feed_in_price = models.DecimalField(**PRICE, help_text="Unsold export, per kWh.")
    network_charge = models.DecimalField(**PRICE, help_text="Per kWh of residual grid supply.")
    levy = models.DecimalField(**PRICE, help_text="Levies and energy tax per kWh consumed.")
    standing_charge = models.DecimalField(**AMOUNT, help_text="Per contract and month.")
    vat_rate = models.DecimalField(**RATE, default=Decimal("0.19"))
    reward_credit = models.DecimalField(
        **PRICE, help_text="Credit per reward token earned in the period (0: not credited)."
    )

    class Meta:
        ordering = ["tariff", "-valid_from"]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=models.F("valid_from")),
                name="billing_tariff_version_valid_range",
            ),
            models.UniqueConstraint(
                fields=["tariff", "valid_from"], name="billing_tariff_version_unique_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tariff} from {self.valid_from:%Y-%m-%d}"

    def clean(self) -> None:
        if self.valid_to and self.valid_from and self.valid_to <= self.valid_from:
            raise ValidationError({"valid_to": "The validity must end after it starts."})
        if self.valid_from and self.tariff_id:
            overlap = SupplyTariffVersion.objects.filter(tariff_id=self.tariff_id).exclude(
                pk=self.pk
            )
            overlap = overlap.filter(Q(valid_to__isnull=True) | Q(valid_to__gt=self.valid_from))
            if self.valid_to:
                overlap = overlap.filter(valid_from__lt=self.valid_to)
            if overlap.exists():
                raise ValidationError(
                    {"valid_from": "The validity overlaps another version of this tariff."}
                )


class PaymentMethod(models.TextChoices):
    DIRECT_DEBIT = "direct_debit", "SEPA direct debit"
    TRANSFER = "transfer", "Bank transfer"


class SupplyContract(models.Model):
    """Supply of one connection point to a member under a tariff, from `start` to `end`."""

    class Cycle(models.TextChoices):
        MONTHLY = "monthly", "Monthly"

    reference = models.CharField(max_length=30, unique=True)
    member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="supply_contracts"
    )
    connection_point = models.ForeignKey(
        "grid.ConnectionPoint",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="supply_contracts",
    )
    tariff = models.ForeignKey(SupplyTariff, on_delete=models.PROTECT, related_name="contracts")
    start = models.DateField()
    end = models.DateField(null=True, blank=True, help_text="Last day of supply (inclusive).")
    billing_cycle = models.CharField(max_length=10, choices=Cycle.choices, default=Cycle.MONTHLY)
    payment_method = models.CharField(
        max_length=12, choices=PaymentMethod.choices, default=PaymentMethod.DIRECT_DEBIT
    )

    class Meta:
        ordering = ["member_id", "start", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end__isnull=True) | Q(end__gte=models.F("start")),
                name="billing_contract_valid_range",
            )
        ]

    def __str__(self) -> str:
        return f"contract {self.reference}"

    def clean(self) -> None:
        if self.end and self.start and self.end < self.start:
            raise ValidationError({"end": "The contract must end on or after its start."})
        if (
            self.connection_point_id
            and self.member_id
            and self.connection_point.member_id != self.member_id
        ):
            raise ValidationError(
                {"connection_point": "This connection point belongs to another member."}
            )


class SiteMove(models.Model):
    """A dated change of occupant at a site (`site_move`): the leaving member's meters and supply
    end at `at`, the incoming member's start then. Each is settled and billed for their own
    intervals; the final register readings are in `apps.meters` (MeterRegisterRead)."""

    class FinalReading(models.TextChoices):
        REAL = "real", "Real (the meter's reading at the move)"
        ESTIMATED = "estimated", "Estimated (flagged)"

    connection_point = models.ForeignKey(
        "grid.ConnectionPoint", on_delete=models.PROTECT, related_name="moves"
    )
    leaving_member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="+"
    )
    incoming_member = models.ForeignKey(
        "accounts.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField(help_text="UTC, on the interval grid.")
    final_reading = models.CharField(max_length=10, choices=FinalReading.choices)
    ended_contract = models.ForeignKey(
        SupplyContract, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    started_contract = models.ForeignKey(
        SupplyContract, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"move at {self.connection_point_id} {self.at:%Y-%m-%d %H:%M}"


class BillingRun(models.Model):
    """The billing of one month (period = its first day); re-running refreshes drafts only."""

    period = models.DateField(unique=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(default=dict)

    class Meta:
        ordering = ["-period"]

    def __str__(self) -> str:
        return f"billing run {self.period:%Y-%m}"


class Invoice(StatusModel, models.Model):
    """An invoice, credit note or rectifying invoice. Issued documents are never edited: a credit
    note annuls one, a rectifying invoice replaces it (both reference it as `original`)."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", "Invoice"
        CREDIT_NOTE = "credit_note", "Credit note"
        RECTIFYING = "rectifying", "Rectifying invoice"
        SHARE_CAPITAL = "shares", "Share capital invoice"

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
    period = models.DateField(help_text="First day of the billed month.")
    run = models.ForeignKey(
        BillingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices"
    )
    kind = models.CharField(max_length=11, choices=Kind.choices, default=Kind.INVOICE)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    original = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="corrections"
    )
    statement_id = models.BigIntegerField(
        null=True, blank=True, help_text="The market statement whose settlement lines it bills."
    )
    reason = models.CharField(max_length=200, blank=True)
    series = models.CharField(max_length=10, blank=True)
    number = models.CharField(max_length=30, blank=True)
    currency = models.CharField(max_length=3)
    payment_method = models.CharField(max_length=12, choices=PaymentMethod.choices)
    net = models.DecimalField(**AMOUNT)
    vat = models.DecimalField(**AMOUNT)
    gross = models.DecimalField(**AMOUNT)
    vat_breakdown = models.JSONField(default=list)
    reviewed_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period", "member_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "period"],
                condition=Q(kind="invoice"),
                name="billing_one_invoice_per_member_and_period",
            ),
            models.UniqueConstraint(
                fields=["series", "number"],
                condition=~Q(number=""),
                name="billing_invoice_number_unique_in_series",
            ),
            models.CheckConstraint(
                condition=Q(status="issued", number__gt="") | ~Q(status="issued"),
                name="billing_issued_invoice_has_number",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.number or '(draft)'} [{self.status}]"


class InvoiceLine(models.Model):
    """One line of an invoice; `net` in cents, positive when the member pays."""

    class Kind(models.TextChoices):
        P2P_PURCHASE = "p2p_purchase", "Energy bought from members"
        P2P_SALE = "p2p_sale", "Energy sold to members"
        P2P_NETWORK_FEE = "p2p_network_fee", "Network fee on energy bought from members"
        RESIDUAL_SUPPLY = "residual_supply", "Residual supply from the grid"
        UNSOLD_EXPORT = "unsold_export", "Unsold export to the grid"
        NETWORK_CHARGE = "network_charge", "Network charges"
        LEVY = "levy", "Levies and energy tax"
        STANDING_CHARGE = "standing_charge", "Standing charge"
        REWARD = "reward", "Rewards credited"
        SHARED_PLANT_REVENUE = "shared_plant_revenue", "Shared plant revenue share"
        SHARED_PLANT_KWH = "shared_plant_kwh", "Generation kWh from a shared plant"
        SHARE_CAPITAL = "share_capital", "Share capital subscribed"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    is_adjustment = models.BooleanField(
        default=False, help_text="A correction of an earlier, already invoiced period."
    )
    description = models.CharField(max_length=200)
    quantity = models.DecimalField(max_digits=16, decimal_places=3, default=Decimal("1"))
    unit = models.CharField(max_length=10, default="kWh")
    unit_price = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal("0"))
    net = models.DecimalField(**AMOUNT)
    vat_rate = models.DecimalField(**RATE)

    class Meta:
        ordering = ["invoice_id", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "position"], name="billing_line_unique_position"
            )
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.net}"


class InvoiceSequence(models.Model):
    """The counter of one numbering series (e.g. F2026). Locked with select_for_update in the
    issuing transaction, so numbers are gap-free: a rolled-back issue gives its number back."""

    series = models.CharField(max_length=10, unique=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.series}: {self.last_number}"


class Mandate(StatusModel, models.Model):
    """A member's SEPA direct-debit mandate (core scheme); its account also receives payouts.
    IBAN and BIC are validated with schwifty (apps.billing.services.mandate_create)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REVOKED = "revoked", "Revoked"

    TRANSITIONS = {
        Status.ACTIVE: frozenset({Status.REVOKED}),
        Status.REVOKED: frozenset(),
    }

    member = models.ForeignKey("accounts.Member", on_delete=models.PROTECT, related_name="+")
    reference = models.CharField(max_length=35, unique=True, help_text="Mandate reference.")
    signed_on = models.DateField()
    account_holder = models.CharField(max_length=70)
    iban = models.CharField(max_length=34)
    bic = models.CharField(max_length=11)
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.ACTIVE)
    first_collected_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["member_id", "-signed_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["member"],
                condition=Q(status="active"),
                name="billing_one_active_mandate_per_member",
            )
        ]

    def __str__(self) -> str:
        return f"mandate {self.reference} [{self.status}]"


class SepaFile(models.Model):
    """One generated SEPA file: a pain.008 collection or a pain.001 credit transfer."""

    class Kind(models.TextChoices):
        COLLECTION = "pain.008", "Direct-debit collection (pain.008)"
        TRANSFER = "pain.001", "Credit transfer (pain.001)"

    period = models.DateField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    message_id = models.CharField(max_length=35, unique=True)
    name = models.CharField(max_length=80)
    execution_date = models.DateField()
    count = models.PositiveIntegerField()
    total = models.DecimalField(**AMOUNT)
    content = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class PaymentInstruction(StatusModel, models.Model):
    """One invoice in one SEPA file, found again in the bank statement by its end-to-end id."""

    class Status(models.TextChoices):
        PENDING = "pending", "Sent to the bank"
        SETTLED = "settled", "Settled"
        RETURNED = "returned", "Returned"

    TRANSITIONS = {
        Status.PENDING: frozenset({Status.SETTLED, Status.RETURNED}),
        Status.SETTLED: frozenset({Status.RETURNED}),
        Status.RETURNED: frozenset(),
    }

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="instructions")
    sepa_file = models.ForeignKey(SepaFile, on_delete=models.PROTECT, related_name="instructions")
    mandate = models.ForeignKey(Mandate, on_delete=models.PROTECT, related_name="+")
    end_to_end_id = models.CharField(max_length=35, unique=True)
    amount = models.DecimalField(**AMOUNT)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(status__in=["pending", "settled"]),
                name="billing_one_live_instruction_per_invoice",
            )
        ]

    def __str__(self) -> str:
        return f"{self.end_to_end_id} {self.amount} [{self.status}]"


class LedgerEntry(models.Model):
    """One balanced journal entry of the cooperative's small double-entry ledger: its lines sum
    to zero. Entries are appended, never changed (a correction is another entry)."""

    class Kind(models.TextChoices):
        DOCUMENT = "document", "Invoice or credit note issued"
        PAYMENT = "payment", "Payment received"
        PAYOUT = "payout", "Payout sent"
        RETURN = "return", "Direct debit returned"
        DUNNING_FEE = "dunning_fee", "Reminder fee"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    booked_on = models.DateField()
    description = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["booked_on", "id"]
        verbose_name = "ledger entry"
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.booked_on} {self.description}"


class LedgerLine(models.Model):
    """A debit (positive) or credit (negative) on one account. Lines on the receivable account
    name the member and, where there is one, the invoice they settle or reopen."""

    class Account(models.TextChoices):
        RECEIVABLE = "receivable", "Members' accounts (receivable)"
        REVENUE = "revenue", "Energy revenue"
        VAT = "vat", "VAT payable"
        BANK = "bank", "Bank"
        FEES = "fees", "Fees charged to members"
        EQUITY = "equity", "Members' share capital"

    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="lines")
    account = models.CharField(max_length=10, choices=Account.choices)
    member = models.ForeignKey(
        "accounts.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_lines"
    )
    amount = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        ordering = ["entry_id", "id"]
        indexes = [models.Index(fields=["account", "member"])]

    def __str__(self) -> str:
        return f"{self.account} {self.amount}"


class BankStatement(models.Model):
    """An imported camt.053 statement; its message id is imported once."""

    message_id = models.CharField(max_length=35, unique=True)
    iban = models.CharField(max_length=34)
    sha256 = models.CharField(max_length=64, unique=True)
    imported_at = models.DateTimeField()
    entry_count = models.PositiveIntegerField()

    class Meta:
        ordering = ["-imported_at"]

    def __str__(self) -> str:
        return f"camt.053 {self.message_id}"


class BankTransaction(StatusModel, models.Model):
    """One booked entry of an imported statement and what it was matched to. Unmatched entries
    wait in the staff queue."""

    class Kind(models.TextChoices):
        PAYMENT = "payment", "Payment received"
        PAYOUT = "payout", "Payout debited"
        RETURN = "return", "Direct debit returned"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        MATCHED = "matched", "Matched"
        UNMATCHED = "unmatched", "Unmatched"

    TRANSITIONS = {
        Status.UNMATCHED: frozenset({Status.MATCHED}),
        Status.MATCHED: frozenset(),
    }

    statement = models.ForeignKey(
        BankStatement, on_delete=models.PROTECT, related_name="transactions"
    )
    booking_date = models.DateField()
    amount = models.DecimalField(max_digits=14, decimal_places=2, help_text="+ credit, − debit.")
    end_to_end_id = models.CharField(max_length=35, blank=True)
    reference = models.CharField(max_length=140, blank=True)
    counterparty = models.CharField(max_length=140, blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.OTHER)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.UNMATCHED)
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="bank_transactions"
    )
    fee = models.DecimalField(**AMOUNT)

    class Meta:
        ordering = ["booking_date", "id"]

    def __str__(self) -> str:
        return f"{self.booking_date} {self.amount} {self.end_to_end_id or self.reference}"


class Dispute(models.Model):
    """A member disputes an invoice: no reminder is sent for it while the dispute is open."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="disputes")
    reason = models.CharField(max_length=200)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(closed_at__isnull=True),
                name="billing_one_open_dispute_per_invoice",
            )
        ]

    def __str__(self) -> str:
        return f"dispute of {self.invoice_id}"


class Reminder(models.Model):
    """A payment reminder (dunning level 1, 2, …) for an overdue invoice, with its fee."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="reminders")
    level = models.PositiveSmallIntegerField()
    sent_on = models.DateField()
    due_date = models.DateField()
    fee = models.DecimalField(**AMOUNT)

    class Meta:
        ordering = ["invoice_id", "level"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "level"], name="billing_one_reminder_per_level"
            )
        ]

    def __str__(self) -> str:
        return f"reminder {self.level} for {self.invoice_id}"


class DocumentEmail(models.Model):
    """An invoice, credit note or reminder e-mailed to the member with the PDF attached."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="emails")
    reminder = models.ForeignKey(
        Reminder, null=True, blank=True, on_delete=models.PROTECT, related_name="emails"
    )
    to = models.EmailField()
    subject = models.CharField(max_length=200)
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["-sent_at", "-id"]

    def __str__(self) -> str:
        return self.subject


class JoinApplication(StatusModel, models.Model):
    """An application to join submitted at /join/: who, where (the first site), how they pay
    (IBAN and SEPA mandate consent), how many shares, and the privacy consent, each consent with
    the text version it was given to. Its applicant is a `Member` in status applicant.

    pending (e-mail not verified) → verified → approved | rejected; only a verified application
    can be approved (apps.billing.services.membership)."""

    class Status(models.TextChoices):
        PENDING = "pending", "E-mail not verified yet"
        VERIFIED = "verified", "Verified, to review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    TRANSITIONS = {
        Status.PENDING: frozenset({Status.VERIFIED, Status.REJECTED}),
        Status.VERIFIED: frozenset({Status.APPROVED, Status.REJECTED}),
        Status.APPROVED: frozenset(),
        Status.REJECTED: frozenset(),
    }

    member = models.OneToOneField(
        "accounts.Member", on_delete=models.PROTECT, related_name="join_application"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    email = models.EmailField()
    legal_name = models.CharField(max_length=200)
    street = models.CharField(max_length=200)
    postal_code = models.CharField(max_length=20)
    city = models.CharField(max_length=100)
    country = models.CharField(max_length=2, default="DE")
    site_street = models.CharField(max_length=200)
    site_postal_code = models.CharField(max_length=20)
    site_city = models.CharField(max_length=100)
    expected_annual_wh = models.BigIntegerField(help_text="Expected consumption per year (Wh).")
    pv_peak_w = models.PositiveIntegerField(null=True, blank=True, help_text="PV peak power (W).")
    account_holder = models.CharField(max_length=70)
    iban = models.CharField(max_length=34)
    bic = models.CharField(max_length=11, blank=True)
    mandate_text = models.TextField(help_text="The SEPA mandate text the applicant agreed to.")
    mandate_text_version = models.CharField(max_length=20)
    privacy_policy_version = models.CharField(max_length=20)
    consented_at = models.DateTimeField(help_text="When both consents were given.")
    shares = models.PositiveIntegerField()
    share_price = models.DecimalField(**AMOUNT, help_text="Price of one share when applying.")
    submitted_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=200, blank=True, help_text="Why it was rejected.")
    share_invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-submitted_at"]
        verbose_name = "join application"

    def __str__(self) -> str:
        return f"join application {self.pk} ({self.get_status_display()})"

    @property
    def share_capital(self) -> Decimal:
        return self.share_price * self.shares
