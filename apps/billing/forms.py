"""Staff forms of the billing app (admin)."""

from __future__ import annotations

from django import forms

from apps.accounts.models import Member
from apps.billing.models import SiteMove, SupplyTariff
from apps.grid.models import ConnectionPoint


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
