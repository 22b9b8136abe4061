"""Staff forms of the meters app (admin)."""

from __future__ import annotations

from django import forms


class MeterExchangeForm(forms.Form):
    new_serial = forms.CharField(max_length=40)
    new_public_key = forms.CharField(
        max_length=130, help_text="The new device's secp256k1 public key (hex)."
    )
    at = forms.DateTimeField(help_text="When the meter was swapped (UTC).")
    old_final_register_wh = forms.IntegerField(
        min_value=0, help_text="The old meter's import register when removed (Wh)."
    )
    new_initial_register_wh = forms.IntegerField(
        min_value=0, initial=0, help_text="The new meter's import register when installed (Wh)."
    )
