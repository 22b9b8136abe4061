"""Portal forms. They only parse input; the services validate the business rules and their
ApplicationError.extra is copied back onto the form's fields."""

from __future__ import annotations

from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join

from apps.accounts.models import Member
from apps.core.exceptions import ApplicationError
from apps.market.models import Order
from apps.market.selectors import selectable_partners


class PartnerSelect(forms.SelectMultiple):
    """The same `<select multiple>` as Django's, rendered in Python in one pass: the template
    renderer includes one template per option, which made the partner list (every member who
    opted in) the most expensive part of the trading page."""

    def render(self, name, value, attrs=None, renderer=None):
        chosen = {str(v) for v in self.format_value(value)}
        final = self.build_attrs(self.attrs, attrs)
        options = format_html_join(
            "",
            '\n  <option value="{}"{}>{}</option>',
            (
                (key, " selected" if key in chosen else "", label)
                for key, label in ((str(v), label) for v, label in self.choices)
            ),
        )
        return format_html(
            '<select name="{}"{} multiple>{}\n</select>', name, flatatt(final), options
        )


class PreferenceForm(forms.Form):
    max_buy_price = forms.DecimalField(
        max_digits=9, decimal_places=6, help_text="Highest price per kWh delivered, fees included."
    )
    min_sell_price = forms.DecimalField(
        max_digits=9, decimal_places=6, help_text="Lowest price per kWh you sell at."
    )
    green_only = forms.BooleanField(required=False, label="Buy renewable energy only")
    preferred_partners = forms.ModelMultipleChoiceField(
        queryset=Member.objects.none(), required=False, widget=PartnerSelect
    )
    battery_reserve_percent = forms.IntegerField(min_value=0, max_value=100, initial=0)
    auto_trade = forms.BooleanField(required=False, initial=True, label="Trade automatically")
    partner_selectable = forms.BooleanField(
        required=False,
        label="Other members may choose me as a preferred partner",
        help_text="They see your membership number only.",
    )

    def __init__(self, *args, member: Member, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["preferred_partners"].queryset = selectable_partners(member=member).only(
            "pk", "membership_number"
        )
        self.fields["preferred_partners"].label_from_instance = lambda m: m.membership_number


class OrderForm(forms.Form):
    interval_start = forms.TypedChoiceField(choices=(), label="Delivery interval")
    side = forms.ChoiceField(choices=Order.Side.choices)
    wh = forms.IntegerField(label="Energy (Wh)")
    limit_price = forms.DecimalField(max_digits=9, decimal_places=6, label="Price limit per kWh")
    green = forms.BooleanField(required=False, label="Renewable only / renewable energy")

    def __init__(self, *args, intervals, **kwargs):
        super().__init__(*args, **kwargs)
        self._by_key = {t.isoformat(): t for t in intervals}
        self.fields["interval_start"].choices = [
            (t.isoformat(), f"{t:%Y-%m-%d %H:%M} UTC") for t in intervals
        ]

    def clean_interval_start(self):
        return self._by_key[self.cleaned_data["interval_start"]]


def apply_errors(form: forms.Form, exc: ApplicationError) -> None:
    """Copy a service's field errors onto the form (unknown fields become form errors)."""
    if not exc.extra:
        form.add_error(None, exc.message)
        return
    for field, messages in exc.extra.items():
        for message in messages if isinstance(messages, list) else [messages]:
            form.add_error(field if field in form.fields else None, str(message))
