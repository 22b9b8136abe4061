"""Explicit state machines: a TextChoices status, a table of allowed transitions, and one method
that changes the status.

A model with a `status` field mixes in `StatusModel`, declares `TRANSITIONS` (every status to
the set of statuses it may move to) and changes its status only with `transition_to` (one row) or
`transition_many` (many rows, one UPDATE). Both check the table, save, and send `status_changed`.

Dependency inversion: core cannot import the audit app (the audit app imports core), so the
audit row of a status change is written by a receiver of `status_changed` that `apps.audit`
connects in its AppConfig.ready — when the caller passes an `event`. Everything runs inside the
caller's transaction: a rolled-back transition leaves no audit row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.dispatch import Signal

from apps.core.exceptions import InvalidTransition
from apps.core.types import Actor

# Sent after a status change is saved. sender: the model class; kwargs: instance, from_status,
# to_status, actor, event (an apps.audit AuditEvent or None), details (dict).
status_changed = Signal()


def check_transition(transitions: Mapping[Any, Set[str]], current: str, target: str) -> None:
    """Raise InvalidTransition unless `current -> target` is in the table."""
    if target not in transitions.get(current, ()):
        raise InvalidTransition(
            f"Cannot go from {current!r} to {target!r}.",
            {"from": current, "to": target, "allowed": sorted(transitions.get(current, ()))},
        )


def check_path(
    transitions: Mapping[str, frozenset[str] | set[str]],
    current: str,
    target: str,
    via: Sequence[str] = (),
) -> None:
    """Check every hop of current -> *via -> target against the table."""
    for hop in (*via, target):
        check_transition(transitions, current, hop)
        current = hop


class StatusModel:
    """Mixin for models with a `status` field and a `TRANSITIONS` table.

    Creating a row in its initial status is not a transition; every later change of `status`
    goes through `transition_to`, `transition_each` or `transition_where`.
    """

    TRANSITIONS: ClassVar[Mapping[str, frozenset[str] | set[str]]]
    status: str
    pk: Any

    def transition_to(
        self,
        target: str,
        *,
        actor: Actor,
        event: str | None = None,
        details: dict[str, Any] | None = None,
        update_fields: Iterable[str] | None = (),
        via: Sequence[str] = (),
    ) -> None:
        """Move to `target`: check the table, save the status and `update_fields` (set by the
        caller beforehand; None saves every field) and send `status_changed` (which writes an
        audit row when `event` is given).

        `via` names intermediate statuses a row passes through within this one write (e.g. a
        chain receipt that is also the confirmation: sent -> mined -> confirmed); every hop is
        checked. Raises InvalidTransition, with nothing saved or sent, when a hop is not allowed.
        """
        source = self.status
        check_path(type(self).TRANSITIONS, source, target, via)
        self.status = target
        if update_fields is None:
            self.save()  # type: ignore[attr-defined]
        else:
            self.save(update_fields=["status", *update_fields])  # type: ignore[attr-defined]
        _send(type(self), self, source, target, actor, event, details)

    @classmethod
    def transition_each(
        cls,
        changes: Iterable[tuple[StatusModel, str]],
        *,
        actor: Actor,
        event: str | None = None,
        details: dict[str, Any] | None = None,
        update_fields: Iterable[str] = (),
        via: Sequence[str] = (),
    ) -> int:
        """Move each row to its target with one `bulk_update` of status and `update_fields` (set
        on the instances beforehand). Every change is checked first: one illegal move raises
        InvalidTransition and nothing is saved. `status_changed` is sent once per row. Returns
        the number of rows."""
        changes = list(changes)
        if not changes:
            return 0
        for row, target in changes:
            check_path(cls.TRANSITIONS, row.status, target, via)
        sources = [row.status for row, _ in changes]
        for row, target in changes:
            row.status = target
        manager = cls._default_manager  # type: ignore[attr-defined]
        manager.bulk_update([row for row, _ in changes], ["status", *update_fields])
        for (row, target), source in zip(changes, sources, strict=True):
            _send(cls, row, source, target, actor, event, details)
        return len(changes)

    @classmethod
    def transition_where(
        cls,
        queryset: models.QuerySet[Any],
        source: str,
        target: str,
        *,
        fields: Mapping[str, Any] | None = None,
    ) -> int:
        """Move every row of `queryset` that is in `source` to `target` with one UPDATE (plus
        `fields`), for writes that never read the rows. The table is checked once for
        source -> target, which holds for every row the UPDATE touches. No instance exists, so no
        signal is sent: the caller writes the audit row of the batch. Returns the row count."""
        check_transition(cls.TRANSITIONS, source, target)
        return queryset.filter(status=source).update(status=target, **(fields or {}))


def _send(
    model: type,
    instance: Any,
    source: str,
    target: str,
    actor: Actor,
    event: str | None,
    details: dict[str, Any] | None,
) -> None:
    status_changed.send(
        sender=model,
        instance=instance,
        from_status=source,
        to_status=target,
        actor=actor,
        event=event,
        details=details or {},
    )


# --- admin forms ---------------------------------------------------------------------------------
# A status edited by hand in the admin is a transition like any other: the form accepts only
# the moves of the model's table, and saving goes through transition_to.


def status_form_class(
    form_class: type[forms.ModelForm[Any]],
) -> type[forms.ModelForm[Any]]:
    """`form_class` with a `status` field that accepts only the moves the table allows."""

    class StatusForm(form_class):  # type: ignore[valid-type,misc]
        def clean_status(self) -> str:
            target: str = self.cleaned_data["status"]
            current = self.instance.status if self.instance.pk else None
            if current is not None and target != current:
                try:
                    check_transition(type(self.instance).TRANSITIONS, current, target)
                except InvalidTransition as exc:
                    raise ValidationError(exc.message) from exc
            return target

    return StatusForm


def status_form_save(form: forms.ModelForm[Any], obj: StatusModel, *, actor: Actor) -> None:
    """Save `obj` built by a bound ModelForm (`form.save(commit=False)`): a changed status goes
    through transition_to, anything else is a plain save."""
    if obj.pk is not None and "status" in form.changed_data:
        target = obj.status
        obj.status = form.initial["status"]
        obj.transition_to(target, actor=actor, update_fields=None)
    else:
        obj.save()  # type: ignore[attr-defined]


class StatusAdminMixin:
    """ModelAdmin mixin for StatusModel admins whose change form edits `status`."""

    form = status_form_class(forms.ModelForm)

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        status_form_save(form, obj, actor=request.user)


def status_formset_save(formset: Any, *, actor: Actor) -> None:
    """Save an inline formset of a StatusModel (as ModelAdmin.save_formset does): changed
    statuses go through transition_to."""
    moves = {
        form.instance.pk: (form.initial["status"], form.cleaned_data["status"])
        for form in formset.initial_forms
        if form.has_changed() and "status" in form.changed_data
    }
    for obj in formset.save(commit=False):
        if obj.pk in moves:
            source, target = moves[obj.pk]
            obj.status = source
            obj.transition_to(target, actor=actor, update_fields=None)
        else:
            obj.save()
    for obj in formset.deleted_objects:
        obj.delete()
    formset.save_m2m()
