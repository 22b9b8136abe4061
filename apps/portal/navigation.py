"""Portal navigation: one place that knows which section lives at which URL.

Each section lists candidate URL names, first match wins. Until the owning app provides one of
them, the link points at an honest "coming" page (`portal:coming`). An app takes over its section
by defining a URL with one of the candidate names (see docs/portal.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.urls import NoReverseMatch, reverse


@dataclass(frozen=True)
class NavSection:
    slug: str
    label: str
    candidates: tuple[str, ...]
    summary: str  # shown on the "coming" page


MEMBER_SECTIONS: tuple[NavSection, ...] = (
    NavSection("dashboard", "Dashboard", ("portal:dashboard",), ""),
    NavSection(
        "meters",
        "Meters",
        ("meters:index", "meters:member_meters", "meters:meter_list"),
        "Your meters, recent readings with their quality codes and Green Button / CSV exports.",
    ),
    NavSection(
        "trading",
        "Trading",
        ("market:index", "market:trading"),
        "Your trading preferences, upcoming intervals, recent trades and clearing prices.",
    ),
    NavSection(
        "statements",
        "Statements",
        ("market:statements", "market:statement_list"),
        "Monthly statements from metered actuals, as PDF and CSV.",
    ),
    NavSection(
        "certificates",
        "Certificates",
        ("incentives:certificates", "incentives:certificate_list"),
        "Your hourly renewable-energy certificates: held, transferred and claimed.",
    ),
    NavSection(
        "rewards",
        "Rewards",
        ("incentives:rewards", "incentives:reward_list"),
        "Green rewards for local renewable consumption and demand-response performance.",
    ),
    NavSection(
        "events",
        "Events",
        ("grid:events", "grid:event_list"),
        "Demand-response events: opt in or out and see your measured performance.",
    ),
    NavSection("wallet", "Wallet", ("portal:wallet",), ""),
    NavSection(
        "my-data",
        "My data",
        ("compliance:my_data", "incentives:my_data", "compliance:data_export"),
        "Export all your data (JSON, CSV and Green Button XML).",
    ),
)

STAFF_LINKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Admin", ("admin:index",)),
    ("Ingest", ("meters:ingest", "meters:staff_ingest")),
    ("Market monitor", ("market:monitor", "market:staff_monitor")),
    ("Settlement runs", ("market:runs",)),
    ("Grid", ("grid:dashboard", "grid:staff_dashboard")),
    ("Certificate registry", ("incentives:registry",)),
    ("Reports", ("compliance:reports",)),
    ("Erasure requests", ("compliance:erasure",)),
)

AUDITOR_LINKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Reports", ("compliance:reports",)),
    ("Certificate registry", ("incentives:registry",)),
)


def _first_url(candidates: tuple[str, ...]) -> str | None:
    for name in candidates:
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return None


@cache
def section_by_slug() -> dict[str, NavSection]:
    return {section.slug: section for section in MEMBER_SECTIONS}


def member_nav() -> list[dict[str, str | bool]]:
    items = []
    for section in MEMBER_SECTIONS:
        url = _first_url(section.candidates)
        items.append(
            {
                "slug": section.slug,
                "label": section.label,
                "url": url or reverse("portal:coming", kwargs={"section": section.slug}),
                "coming": url is None,
            }
        )
    return items


def _links(spec: tuple[tuple[str, tuple[str, ...]], ...]) -> list[dict[str, str]]:
    links = []
    for label, candidates in spec:
        url = _first_url(candidates)
        if url is not None:
            links.append({"label": label, "url": url})
    return links


def staff_nav() -> list[dict[str, str]]:
    return _links(STAFF_LINKS)


def auditor_nav() -> list[dict[str, str]]:
    return _links(AUDITOR_LINKS)
