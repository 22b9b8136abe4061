from __future__ import annotations

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.utils import timezone

from apps.core.state import StatusModel


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: object) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """Login is by email (django-allauth); there is no username."""

    username = None  # type: ignore[assignment]
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()  # type: ignore[misc]

    def __str__(self) -> str:
        return self.email


class Role(models.TextChoices):
    STAFF = "staff", "Cooperative staff"
    MEMBER = "member", "Member"
    AUDITOR = "auditor", "Auditor"


class Member(StatusModel, models.Model):
    class Kind(models.TextChoices):
        CONSUMER = "consumer", "Consumer"
        PRODUCER = "producer", "Producer"
        PROSUMER = "prosumer", "Prosumer"

    class Status(models.TextChoices):
        APPLICANT = "applicant", "Applicant"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        LEFT = "left", "Left"

    TRANSITIONS = {
        Status.APPLICANT: frozenset({Status.ACTIVE, Status.LEFT}),
        Status.ACTIVE: frozenset({Status.SUSPENDED, Status.LEFT}),
        Status.SUSPENDED: frozenset({Status.ACTIVE, Status.LEFT}),
        Status.LEFT: frozenset(),
    }

    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="member")
    membership_number = models.CharField(max_length=20, unique=True)
    legal_name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CONSUMER)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    joined = models.DateField(default=timezone.localdate)
    # Site / connection point address (the grid side lives in grid.ConnectionPoint).
    street = models.CharField(max_length=200, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    city = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, default="DE")
    # Wallet linked by Sign-In with Ethereum (EIP-4361); checksummed address.
    wallet_address = models.CharField(max_length=42, blank=True, db_index=True)
    # Secret salt of the member's on-chain identifiers (e.g. a certificate claim's beneficiary
    # hash): without it nobody can link a chain record to a name; erasure destroys it.
    chain_salt = models.CharField(max_length=64, blank=True)
    wallet_linked_at = models.DateTimeField(null=True, blank=True)
    pseudonymised_at = models.DateTimeField(null=True, blank=True)
    # The latest status change's reason (every change is in the audit log with its reason).
    status_reason = models.CharField(max_length=200, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    left_on = models.DateField(null=True, blank=True, help_text="Last day of membership.")

    class Meta:
        ordering = ["membership_number"]

    def __str__(self) -> str:
        return f"{self.membership_number} {self.legal_name}"

    @property
    def is_active_member(self) -> bool:
        return self.status == self.Status.ACTIVE


class WalletNonce(models.Model):
    """Single-use nonce for a Sign-In with Ethereum message."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="wallet_nonces")
    nonce = models.CharField(max_length=64, unique=True)
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)


class MFAEnrollment(models.Model):
    """A superuser's invitation for one staff or auditor account to set up its authenticator.

    Staff TOTP is never trust-on-first-use: a password alone does not let anyone enrol an
    authenticator. The link carries a signed token (user + nonce, expiring); this row makes it
    single-use (`redeemed_at`) and records who issued it and when the set-up was completed.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="mfa_enrollments")
    nonce = models.CharField(max_length=64, unique=True)
    issued_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    issued_by_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    redeemed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "MFA enrollment link"

    def __str__(self) -> str:
        return f"MFA enrollment for {self.user} ({self.created_at:%Y-%m-%d %H:%M})"
