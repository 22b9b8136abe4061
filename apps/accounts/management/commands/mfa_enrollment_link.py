"""Print an MFA enrollment link for a staff or auditor account (e.g. the first superuser).

Run by an operator with access to the server; the link is audit-logged as issued by "console".
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.services import mfa_enrollment_issue, mfa_reset
from apps.core.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Issue a single-use, expiring MFA enrollment link for a staff or auditor account."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument(
            "--reset", action="store_true", help="remove the account's authenticators first"
        )
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="where the portal is served"
        )

    def handle(self, *args, email: str, reset: bool, base_url: str, **options):
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"No account with e-mail {email}.")
        service = mfa_reset if reset else mfa_enrollment_issue
        try:
            token = service(user=user, actor="console (mfa_enrollment_link)")
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        link = base_url.rstrip("/") + reverse("mfa_enroll", args=[token])
        hours = settings.MFA_ENROLLMENT_TTL_HOURS
        self.stdout.write(f"{link}\n(valid once, for {hours} hours, for {user.email} only)")
