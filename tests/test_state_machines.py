"""Every status change goes through one method (apps.core.state.StatusModel.transition_to and its
bulk variants): the models declare complete transition tables, illegal moves save nothing and log
nothing, legal ones save, audit-log and signal once, and no code outside apps/core/state.py
assigns a status by hand."""

from __future__ import annotations

import ast
from pathlib import Path
from unittest import mock

import pytest
from django.apps import apps
from django.core.exceptions import FieldDoesNotExist

from apps.accounts.tests.factories import MemberFactory
from apps.audit.events import AuditEvent
from apps.audit.models import AuditLog
from apps.compliance.models import ErasureRequest
from apps.core.exceptions import InvalidTransition
from apps.core.state import StatusModel, status_changed

ROOT = Path(__file__).resolve().parent.parent


def _status_models() -> list[type]:
    found = []
    for model in apps.get_models():
        if not model.__module__.startswith("apps."):
            continue
        try:
            field = model._meta.get_field("status")
        except FieldDoesNotExist:
            continue
        if field.choices:
            found.append(model)
    return found


STATUS_MODELS = _status_models()


def _illegal_moves(model) -> list[tuple[str, str]]:
    values = [value for value, _ in model._meta.get_field("status").choices]
    return [
        (source, target)
        for source in values
        for target in values
        if target not in model.TRANSITIONS.get(source, ())
    ]


def test_the_scan_finds_the_models_with_a_lifecycle():
    labels = {m._meta.label for m in STATUS_MODELS}
    assert {
        "market.Order",
        "market.SettlementRun",
        "market.Statement",
        "incentives.Certificate",
        "incentives.CertificateTransfer",
        "grid.DREvent",
        "grid.DispatchPlan",
        "grid.DeviceCommand",
        "chain.ChainIntent",
        "compliance.ErasureRequest",
        "meters.RawBatch",
        "meters.Conflict",
        "meters.Quarantine",
        "accounts.Member",
    } <= labels


@pytest.mark.parametrize("model", STATUS_MODELS, ids=lambda m: m._meta.label)
def test_model_uses_the_mixin_and_declares_a_complete_table(model):
    assert issubclass(model, StatusModel)
    values = {value for value, _ in model._meta.get_field("status").choices}
    assert set(model.TRANSITIONS) == values, "every status needs a row (empty when final)"
    for source, targets in model.TRANSITIONS.items():
        assert set(targets) <= values, f"{source} -> {set(targets) - values}"


@pytest.mark.parametrize("model", STATUS_MODELS, ids=lambda m: m._meta.label)
def test_illegal_transition_saves_nothing_logs_nothing_signals_nothing(model, db):
    moves = _illegal_moves(model)
    assert moves, "a lifecycle with no illegal move is no lifecycle"
    received = []

    def receiver(**kwargs):
        received.append(kwargs)

    status_changed.connect(receiver, dispatch_uid="test-illegal")
    try:
        for source, target in moves:
            instance = model(status=source)
            with (
                mock.patch.object(model, "save") as save,
                mock.patch.object(model._default_manager, "bulk_update") as bulk_update,
            ):
                with pytest.raises(InvalidTransition):
                    instance.transition_to(target, actor=None, event=AuditEvent.REPORT_VERIFIED)
                with pytest.raises(InvalidTransition):
                    model.transition_each([(instance, target)], actor=None)
                save.assert_not_called()
                bulk_update.assert_not_called()
            assert instance.status == source
    finally:
        status_changed.disconnect(dispatch_uid="test-illegal")
    assert received == []
    assert not AuditLog.objects.exists()


@pytest.mark.django_db
def test_illegal_transition_on_a_stored_row_keeps_the_row():
    request = ErasureRequest.objects.create(
        member=MemberFactory(), status=ErasureRequest.Status.COMPLETED
    )
    with pytest.raises(InvalidTransition):
        request.transition_to(
            ErasureRequest.Status.REFUSED,
            actor="staff",
            event=AuditEvent.ERASURE_REQUEST_REFUSED,
        )
    request.refresh_from_db()
    assert request.status == ErasureRequest.Status.COMPLETED
    assert not AuditLog.objects.exists()


@pytest.mark.django_db
def test_legal_transition_saves_logs_once_and_signals():
    request = ErasureRequest.objects.create(member=MemberFactory())
    received = []

    def receiver(sender, **kwargs):
        received.append((sender, kwargs))

    status_changed.connect(receiver, dispatch_uid="test-legal")
    try:
        request.outcome = "not this one"
        request.transition_to(
            ErasureRequest.Status.REFUSED,
            actor="staff desk",
            event=AuditEvent.ERASURE_REQUEST_REFUSED,
            details={"reason": "duplicate"},
            update_fields=["outcome"],
        )
    finally:
        status_changed.disconnect(dispatch_uid="test-legal")
    request.refresh_from_db()
    assert request.status == ErasureRequest.Status.REFUSED
    assert request.outcome == "not this one"
    log = AuditLog.objects.get()
    assert log.event == "erasure_request.refused"
    assert (log.target_type, log.target_id) == ("compliance.erasurerequest", str(request.pk))
    assert log.actor_label == "staff desk"
    assert log.details == {"reason": "duplicate"}
    assert len(received) == 1
    sender, kwargs = received[0]
    assert sender is ErasureRequest
    assert kwargs["instance"] is request
    assert (kwargs["from_status"], kwargs["to_status"]) == ("requested", "refused")
    assert kwargs["actor"] == "staff desk"
    assert kwargs["event"] == AuditEvent.ERASURE_REQUEST_REFUSED


@pytest.mark.django_db
def test_transition_without_event_writes_no_audit_row():
    request = ErasureRequest.objects.create(member=MemberFactory())
    request.transition_to(ErasureRequest.Status.COMPLETED, actor=None)
    request.refresh_from_db()
    assert request.status == ErasureRequest.Status.COMPLETED
    assert not AuditLog.objects.exists()


@pytest.mark.django_db
def test_bulk_variants_check_every_row_and_update_at_once(django_assert_num_queries):
    member_a, member_b = MemberFactory(), MemberFactory()
    a = ErasureRequest.objects.create(member=member_a)
    b = ErasureRequest.objects.create(member=member_b, status=ErasureRequest.Status.COMPLETED)
    with pytest.raises(InvalidTransition):
        ErasureRequest.transition_each(
            [(a, ErasureRequest.Status.REFUSED), (b, ErasureRequest.Status.REFUSED)], actor=None
        )
    a.refresh_from_db()
    assert a.status == ErasureRequest.Status.REQUESTED
    with django_assert_num_queries(1):
        ErasureRequest.transition_each([(a, ErasureRequest.Status.REFUSED)], actor=None)
    a.refresh_from_db()
    assert a.status == ErasureRequest.Status.REFUSED
    with pytest.raises(InvalidTransition):
        ErasureRequest.transition_where(
            ErasureRequest.objects.all(),
            ErasureRequest.Status.COMPLETED,
            ErasureRequest.Status.REFUSED,
        )
    with django_assert_num_queries(1):
        moved = ErasureRequest.transition_where(
            ErasureRequest.objects.all(),
            ErasureRequest.Status.REFUSED,
            ErasureRequest.Status.COMPLETED,
        )
    assert moved == 1
    assert set(ErasureRequest.objects.values_list("status", flat=True)) == {"completed"}


# --- the convention is enforced on the source ------------------------------------------------

ALLOWED = {Path("apps/core/state.py")}


def _imports_django(tree: ast.AST) -> bool:
    """Whether a module imports Django or our apps (pure engines import neither)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return any(name.split(".")[0] in {"django", "apps"} for name in names)


def status_writes(source: str) -> list[tuple[int, str]]:
    """Lines that assign `<x>.status = …` or pass `status=` to `.update(` / `status` to
    `.bulk_update(`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                elements = target.elts if isinstance(target, ast.Tuple) else [target]
                for element in elements:
                    if isinstance(element, ast.Attribute) and element.attr == "status":
                        found.append((node.lineno, "assigns .status"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "update" and any(k.arg == "status" for k in node.keywords):
                found.append((node.lineno, "passes status= to update()"))
            if node.func.attr == "bulk_update" and any(
                "'status'" in ast.unparse(a) or '"status"' in ast.unparse(a)
                for a in [*node.args[1:], *(k.value for k in node.keywords)]
            ):
                found.append((node.lineno, "bulk_update()s status"))
    return found


def test_the_source_scan_catches_a_hand_made_status_change():
    assert status_writes("order.status = 'cancelled'\n") == [(1, "assigns .status")]
    assert status_writes("o.status, o.wh = t, 1\n") == [(1, "assigns .status")]
    assert status_writes("Order.objects.filter(pk=1).update(status='x')\n")
    assert status_writes("Order.objects.bulk_update(rows, ['status'])\n")
    assert status_writes("Order.objects.create(status='open')\n") == []  # initial status: fine
    assert status_writes("counts[row.status] += 1\n") == []


def test_no_status_is_changed_outside_the_transition_method():
    offenders = []
    for path in sorted((ROOT / "apps").rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative in ALLOWED or "migrations" in relative.parts:
            continue
        source = path.read_text()
        tree = ast.parse(source)
        if not _imports_django(tree):
            continue  # pure engines (e.g. the dispatch LP's own Plan.status) hold no model
        offenders += [f"{relative}:{line}: {what}" for line, what in status_writes(source)]
    assert offenders == [], (
        "change statuses with transition_to / transition_each / "
        "transition_where:\n" + "\n".join(offenders)
    )
