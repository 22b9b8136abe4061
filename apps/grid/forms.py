"""Staff form to create a DR event (targets chosen by transformer and/or site)."""

from __future__ import annotations

from django import forms

from apps.grid.models import ConnectionPoint, DREvent, Transformer


class DREventCreateForm(forms.Form):
    start = forms.DateTimeField(help_text="UTC, on a 15-minute boundary")
    end = forms.DateTimeField(help_text="UTC, on a 15-minute boundary")
    signal_name = forms.ChoiceField(choices=DREvent.SignalName.choices)
    signal_type = forms.ChoiceField(choices=DREvent.SignalType.choices)
    signal_value = forms.FloatField(initial=1, help_text="e.g. SIMPLE level 1-3")
    target_reduction_w = forms.IntegerField(min_value=0, initial=0)
    transformers = forms.ModelMultipleChoiceField(
        queryset=Transformer.objects.order_by("name"),
        required=False,
        help_text="Every site on these transformers is targeted.",
    )
    connection_points = forms.ModelMultipleChoiceField(
        queryset=ConnectionPoint.objects.order_by("code"), required=False
    )
    publish = forms.BooleanField(required=False, initial=True, help_text="Notify members now")

    def clean(self):
        data = super().clean()
        ids = {cp.pk for cp in data.get("connection_points") or []}
        for trafo in data.get("transformers") or []:
            ids |= set(trafo.connection_points.values_list("pk", flat=True))
        if not ids:
            raise forms.ValidationError("Choose at least one transformer or site to target.")
        data["target_ids"] = sorted(ids)
        return data
