"""Forms of the billing app: the public join form and the staff move form."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from apps.accounts.models import Member
from apps.billing.models import SiteMove, SupplyTariff
from apps.grid.models import ConnectionPoint


class JoinForm(forms.Form):
    """What an applicant fills in at /join/. Every field is checked here, with a message that
    says what to fix; the service checks the rules again."""

    legal_name = forms.CharField(label="Full name", max_length=200)
    email = forms.EmailField(label="E-mail address", max_length=254)
    street = forms.CharField(label="Street and number", max_length=200)
    postal_code = forms.RegexField(
        label="Postal code",
        regex=r"^[0-9A-Za-z][0-9A-Za-z \-]{1,18}$",
        max_length=20,
        error_messages={"invalid": "Enter a postal code (letters, digits, spaces, dashes)."},
    )
    city = forms.CharField(label="City", max_length=100)
    country = forms.RegexField(
        label="Country (ISO code)",
        regex=r"^[A-Za-z]{2}$",
        initial="DE",
        error_messages={"invalid": "Enter the two-letter country code, e.g. DE."},
    )
    same_site_address = forms.BooleanField(
        label="The site is at my postal address", required=False, initial=True
    )
    site_street = forms.CharField(label="Site: street and number", max_length=200, required=False)
    site_postal_code = forms.CharField(label="Site: postal code", max_length=20, required=False)
    site_city = forms.CharField(label="Site: city", max_length=100, required=False)
    expected_kwh = forms.IntegerField(
        label="Expected consumption (kWh per year)", min_value=1, max_value=10_000_000
    )
    pv_kwp = forms.DecimalField(
        label="Rooftop PV (kWp, if any)",
        required=False,
        min_value=Decimal("0"),
        max_value=Decimal("10000"),
        decimal_places=3,
    )
    account_holder = forms.CharField(label="Account holder", max_length=70)
    iban = forms.CharField(label="IBAN", max_length=42)
    bic = forms.CharField(label="BIC (optional)", max_length=11, required=False)
    mandate_consent = forms.BooleanField(
        label="I sign the SEPA direct-debit mandate above",
        error_messages={"required": "Please sign the SEPA mandate: we collect by direct debit."},
    )
    shares = forms.IntegerField(label="Number of shares")
    privacy_consent = forms.BooleanField(
        label="I have read and accept the privacy policy",
        error_messages={"required": "Please accept the privacy policy to apply."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        low, high = settings.MEMBERSHIP_MIN_SHARES, settings.MEMBERSHIP_MAX_SHARES
        self.fields["shares"].initial = low
        self.fields["shares"].validators.append(_between(low, high))
        self.fields["shares"].help_text = (
            f"{low} to {high} shares of {settings.MEMBERSHIP_SHARE_PRICE} "
            f"{settings.BILLING_CURRENCY} each."
        )

    GROUPS = {
        "you": ("legal_name", "email", "street", "postal_code", "city", "country"),
        "site": (
            "same_site_address",
            "site_street",
            "site_postal_code",
            "site_city",
            "expected_kwh",
            "pv_kwp",
        ),
        "payment": ("account_holder", "iban", "bic", "mandate_consent"),
    }

    def group(self, name: str) -> list:
        return [self[field] for field in self.GROUPS[name]]

    @property
    def you_fields(self) -> list:
        return self.group("you")

    @property
    def site_fields(self) -> list:
        return self.group("site")

    @property
    def payment_fields(self) -> list:
        return self.group("payment")

    def clean_iban(self) -> str:
        try:
            return IBAN(self.cleaned_data["iban"]).compact
        except SchwiftyException as exc:
            raise forms.ValidationError(f"This IBAN is not valid ({exc}).") from exc

    def clean_bic(self) -> str:
        value = (self.cleaned_data.get("bic") or "").strip()
        if not value:
            return ""
        try:
            return BIC(value).compact
        except SchwiftyException as exc:
            raise forms.ValidationError(f"This BIC is not valid ({exc}).") from exc

    def clean_country(self) -> str:
        return self.cleaned_data["country"].upper()

    def clean(self) -> dict:
        data = super().clean()
        if data.get("same_site_address"):
            for part in ("street", "postal_code", "city"):
                data[f"site_{part}"] = data.get(part, "")
        else:
            for part in ("street", "postal_code", "city"):
                if not data.get(f"site_{part}"):
                    self.add_error(f"site_{part}", "Enter the site's address (or tick the box).")
        iban = data.get("iban")
        if iban and not data.get("bic"):
            try:
                if IBAN(iban).bic is None:
                    self.add_error("bic", "Enter the BIC: it cannot be derived from this IBAN.")
            except SchwiftyException:
                pass
        return data


def _between(low: int, high: int):
    def check(value: int) -> None:
        if value is not None and not low <= value <= high:
            raise forms.ValidationError(f"Subscribe between {low} and {high} shares.")

    return check


class SiteMoveForm(forms.Form):
    connection_point = forms.ModelChoiceField(
        queryset=ConnectionPoint.objects.select_related("member").order_by("code"),
        help_text="The site; its current occupant moves out.",
    )
    incoming_member = forms.ModelChoiceField(
        queryset=Member.objects.order_by("membership_number"),
        required=False,
        help_text="Empty: nobody moves in (the site's meters belong to no member).",
    )
    at = forms.DateTimeField(help_text="The move (UTC, on a 15-minute boundary).")
    final_reading = forms.ChoiceField(choices=SiteMove.FinalReading.choices)
    tariff = forms.ModelChoiceField(
        queryset=SupplyTariff.objects.order_by("code"),
        required=False,
        help_text="The incoming member's tariff (default: the leaving contract's).",
    )
