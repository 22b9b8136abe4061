"""Types shared by the services of every app."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

# Who performs a write: a user, the anonymous request user, a system label such as "beat",
# or None for the system itself. The audit log records it.
Actor: TypeAlias = "AbstractBaseUser | AnonymousUser | str | None"
