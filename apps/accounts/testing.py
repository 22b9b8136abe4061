"""Test support shared by every app: the member-isolation case type.

An app declares, in `apps/<app>/tests/isolation.py`:

    from apps.accounts.testing import IsolationCase

    def _statement_url(member):
        statement = StatementFactory(member=member)
        return reverse("market:statement_detail", args=[statement.pk])

    ISOLATION_CASES = [IsolationCase("market:statement_detail", _statement_url)]
    ISOLATION_EXEMPT = {"market:monitor_interval": "staff only"}

tests/test_member_isolation.py collects them: the owner gets a non-error response, any other
member gets 404.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class IsolationCase:
    url_name: str
    make_url: Callable  # (member) -> URL of an object owned by that member
    method: str = "get"
    data: dict = field(default_factory=dict)
    content_type: str | None = None  # e.g. "application/json" for API posts

    def __str__(self) -> str:
        return self.url_name
