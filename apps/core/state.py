"""Explicit state machines: a TextChoices status plus a table of allowed transitions."""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

from apps.core.exceptions import InvalidTransition


def check_transition(transitions: Mapping[Any, Set[str]], current: str, target: str) -> None:
    """Raise InvalidTransition unless `current -> target` is in the table."""
    if target not in transitions.get(current, ()):
        raise InvalidTransition(
            f"Cannot go from {current!r} to {target!r}.",
            {"from": current, "to": target, "allowed": sorted(transitions.get(current, ()))},
        )
