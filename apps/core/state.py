"""Explicit state machines: a TextChoices status plus a table of allowed transitions."""

from __future__ import annotations

from collections.abc import Mapping

from apps.core.exceptions import InvalidTransition


def check_transition(
    transitions: Mapping[str, frozenset[str] | set[str]], current: str, target: str
) -> None:
    """Raise InvalidTransition unless `current -> target` is in the table."""
    if target not in transitions.get(current, ()):
        raise InvalidTransition(
            f"Cannot go from {current!r} to {target!r}.",
            {"from": current, "to": target, "allowed": sorted(transitions.get(current, ()))},
        )
