"""Portal navigation: one place that knows which section lives at which URL.

Every entry names the one URL (by name) that serves it: a name that does not reverse is an error,
never a hidden or dead link. `apps/portal/tests/test_navigation.py` opens every link as every
role (member, staff, auditor).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse


@dataclass(frozen=True)
class NavSection:
    slug: str
    label: str
    url_name: str


@dataclass(frozen=True)
class NavLink:
    label: str
    url_name: str


MEMBER_SECTIONS: tuple[NavSection, ...] = (
    NavSection("dashboard", "Dashboard", "portal:dashboard"),
    NavSection("meters", "Meters", "meters:index"),
    NavSection("trading", "Trading", "market:trading"),
    NavSection("statements", "Statements", "market:statements"),
    NavSection("invoices", "Invoices", "billing:invoices"),
    NavSection("certificates", "Certificates", "incentives:certificates"),
    NavSection("rewards", "Rewards", "incentives:rewards"),
    NavSection("shared-plants", "Shared plants", "incentives:shared_plants"),
    NavSection("events", "Events", "grid:events"),
    NavSection("governance", "Governance", "governance:index"),
    NavSection("inbox", "Inbox", "notifications:inbox"),
    NavSection("wallet", "Wallet", "portal:wallet"),
    NavSection("my-data", "My data", "compliance:my_data"),
)

STAFF_LINKS: tuple[NavLink, ...] = (
    NavLink("Admin", "admin:index"),
    NavLink("Ingest", "meters:ingest"),
    NavLink("Market monitor", "market:monitor"),
    NavLink("Settlement runs", "market:runs"),
    NavLink("Billing", "billing:staff_runs"),
    NavLink("Grid", "grid:dashboard"),
    NavLink("Certificate registry", "incentives:registry"),
    NavLink("Reports", "compliance:reports"),
    NavLink("Erasure requests", "compliance:erasure"),
)

AUDITOR_LINKS: tuple[NavLink, ...] = (
    NavLink("Reports", "compliance:reports"),
    NavLink("Certificate registry", "incentives:registry"),
)


def section_by_slug() -> dict[str, NavSection]:
    return {section.slug: section for section in MEMBER_SECTIONS}


def member_nav() -> list[dict[str, str | bool]]:
    return [
        {"slug": section.slug, "label": section.label, "url": reverse(section.url_name)}
        for section in MEMBER_SECTIONS
    ]


def _links(spec: tuple[NavLink, ...]) -> list[dict[str, str]]:
    return [{"label": link.label, "url": reverse(link.url_name)} for link in spec]


def staff_nav() -> list[dict[str, str]]:
    return _links(STAFF_LINKS)


def auditor_nav() -> list[dict[str, str]]:
    return _links(AUDITOR_LINKS)
