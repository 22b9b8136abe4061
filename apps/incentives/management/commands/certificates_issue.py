"""`python manage.py certificates_issue [--hours N | --start ISO --end ISO]` — certify complete
device-hours from validated generation now (the same service the hourly beat task runs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.incentives.services import certificates_issue


class Command(BaseCommand):
    help = "Issue hourly certificates for complete device-hours (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--hours", type=int, default=48, help="Look back this many hours.")
        parser.add_argument("--start", help="UTC start (ISO 8601); with --end instead of --hours.")
        parser.add_argument("--end", help="UTC end (ISO 8601, exclusive).")

    def handle(self, *args, **options) -> None:
        now = timezone.now()
        try:
            if options["start"] or options["end"]:
                start = datetime.fromisoformat(options["start"]).replace(tzinfo=UTC)
                end = datetime.fromisoformat(options["end"]).replace(tzinfo=UTC)
            else:
                start, end = now - timedelta(hours=options["hours"]), now
        except (TypeError, ValueError) as exc:
            raise CommandError("Give --hours N, or both --start and --end as ISO dates.") from exc
        summary = certificates_issue(start=start, end=end, now=now)
        self.stdout.write(
            json.dumps(
                {
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "device_hours": summary.hours,
                    "certificates": summary.certificates,
                    "wh": summary.wh,
                    "skipped": len(summary.skipped),
                }
            )
        )
