"""Issue (or re-issue) the bearer token of an HTTP gateway: printed once, stored hashed."""

from django.core.management.base import BaseCommand

from apps.meters.services import gateway_token_issue


class Command(BaseCommand):
    help = "Issue the token an HTTP gateway sends as `Authorization: Bearer <token>`."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the gateway's name (re-issuing revokes its old token)")

    def handle(self, *args, **options):
        self.stdout.write(gateway_token_issue(name=options["name"]))
