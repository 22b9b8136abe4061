"""`python manage.py verify_reading --meter SERIAL --interval START` — prints JSON.

Verdict OK (stored reading = anchored leaf, proof verifies against the on-chain root),
TAMPERED (the stored value no longer matches what was anchored) or NOT_ANCHORED.
Exit status: 0 for OK, 1 for TAMPERED, 2 for NOT_ANCHORED.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from apps.chain.anchoring import NOT_ANCHORED, OK, reading_verify
from apps.core.exceptions import ApplicationError


def parse_interval(value: str) -> datetime:
    if value.isdigit():
        return datetime.fromtimestamp(int(value), tz=UTC)
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CommandError(f"--interval: not an ISO datetime or Unix seconds: {value!r}") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)  # documented: naive input is UTC
    return dt.astimezone(UTC)


class Command(BaseCommand):
    help = "Verify one meter reading against its on-chain anchor; prints JSON."

    def add_arguments(self, parser):
        parser.add_argument("--meter", required=True, help="meter serial")
        parser.add_argument(
            "--interval", required=True, help="interval start: ISO 8601 (UTC if naive) or Unix s"
        )
        parser.add_argument("--offline", action="store_true", help="do not query the chain")

    def handle(self, *args, **options):
        start = parse_interval(options["interval"])
        try:
            result = reading_verify(
                serial=options["meter"], interval_start=start, check_chain=not options["offline"]
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps(result.as_dict(), indent=2))
        if result.verdict != OK:
            raise SystemExit(2 if result.verdict == NOT_ANCHORED else 1)
