"""`python manage.py demo_cooperative` — load the demo cooperative (idempotent; docs/demo.md)."""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from apps.demo import loader
from apps.demo.profiles import DEMO_SEED


def totp_code(secret: str, at: float | None = None) -> str:
    from allauth.mfa import app_settings
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    counter = int(time.time() if at is None else at) // app_settings.TOTP_PERIOD
    return format_hotp_value(hotp_value(secret, counter))


def _aware_datetime(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError("give a UTC offset, e.g. 2026-11-20T09:00Z")
    return parsed


def logins_text() -> str:
    from apps.demo.profiles import community

    c = community()
    last = c.households[-1].key
    return "\n".join(
        [
            f"  staff    {loader.STAFF_EMAIL:<34} (admin; TOTP code: "
            "`.venv/bin/python manage.py demo_cooperative --totp`)",
            f"  auditor  {loader.AUDITOR_EMAIL:<34} (read-only; same TOTP as staff)",
            f"  member   {loader.SHOWCASE_EMAIL:<34} (prosumer with PV and battery, "
            f"{loader.membership_number(c.showcase_number)})",
            f"  members  member001..{last}@{loader.DEMO_DOMAIN} (the others)",
            f"  password (all demo users): {loader.DEMO_PASSWORD}",
            f"  TOTP secret (authenticator app, staff/auditor): {loader.DEMO_TOTP_SECRET}",
        ]
    )


def devices_json() -> dict:
    """What a standard OCPP or OpenADR client needs to join the running demo (docs/demo.md)."""
    from apps.demo.keys import (
        DEMO_SPARE_CHARGE_POINT,
        DEMO_SPARE_VEN,
        demo_charger_password,
        demo_charging_token,
    )
    from apps.demo.profiles import community
    from apps.grid import conf
    from apps.grid.openadr_vtn import PATH_PREFIX
    from apps.grid.selectors import charge_points_overview, openadr_vens_overview

    driven = charge_points_overview().exclude(device=None).first()
    if (
        driven is None
        or not charge_points_overview().filter(ocpp_id=DEMO_SPARE_CHARGE_POINT).exists()
    ):
        raise CommandError("No demo charge points yet: run `manage.py demo_cooperative` first.")
    vens = openadr_vens_overview()
    ven = vens.exclude(ven_name=DEMO_SPARE_VEN).first()
    spare = vens.filter(ven_name=DEMO_SPARE_VEN).first()
    if ven is None or spare is None:
        raise CommandError("No demo VENs yet: run `manage.py demo_cooperative` first.")
    showcase = loader.membership_number(community().showcase_number)
    return {
        "ocpp": {
            "url": f"ws://127.0.0.1:{conf.get('OCPP_PORT')}/ocpp/{driven.ocpp_id}",
            "charge_point_id": driven.ocpp_id,
            "password": demo_charger_password(driven.ocpp_id),
            "id_tag": demo_charging_token(showcase),
            "spare_charge_point_id": DEMO_SPARE_CHARGE_POINT,
            "spare_url": f"ws://127.0.0.1:{conf.get('OCPP_PORT')}/ocpp/{DEMO_SPARE_CHARGE_POINT}",
            "spare_password": demo_charger_password(DEMO_SPARE_CHARGE_POINT),
            "subprotocols": ["ocpp1.6", "ocpp2.0.1"],
        },
        "openadr": {
            "vtn_url": f"http://127.0.0.1:{conf.get('OPENADR_VTN_PORT')}{PATH_PREFIX}",
            "ven_name": ven.ven_name,
            "ven_id": ven.ven_id,
            "spare_ven_name": spare.ven_name,
            "spare_ven_id": spare.ven_id,
            # The demo VTN speaks plain HTTP: no certificates, no fingerprints to pin.
            "cert": None,
            "key": None,
            "vtn_fingerprint": None,
        },
    }


class Command(BaseCommand):
    help = "Create (or top up) the demo cooperative from the SimBench 1-LV-rural3--2-sw grid."

    def add_arguments(self, parser):
        parser.add_argument("--print-logins", action="store_true", help="Print demo logins only.")
        parser.add_argument("--totp", action="store_true", help="Print the current TOTP code.")
        parser.add_argument(
            "--print-devices",
            action="store_true",
            help="Print one JSON object: how to connect OCPP and OpenADR clients to the demo.",
        )
        parser.add_argument("--seed", type=int, default=DEMO_SEED)
        parser.add_argument(
            "--now",
            type=_aware_datetime,
            default=None,
            help="End the history here instead of now (ISO 8601 with offset: 2026-11-20T09:00Z).",
        )
        parser.add_argument("--history-days", type=int, default=loader.HISTORY_DAYS)
        parser.add_argument(
            "--signed-days",
            type=float,
            default=loader.SIGNED_DAYS,
            help="Device-sign the readings of the last N days (signing costs ~0.1 ms each).",
        )
        parser.add_argument(
            "--live-intervals",
            type=int,
            default=0,
            help="End the history N intervals before the last complete one and leave them to "
            "the meter simulator (`make run` uses 1).",
        )
        parser.add_argument(
            "--hooks",
            default="",
            help="Comma-separated demo steps to run (market, grid, incentives, billing); "
            "default: all.",
        )
        hooks = parser.add_mutually_exclusive_group()
        hooks.add_argument(
            "--no-hooks", action="store_true", help="Skip the per-app demo steps (apps/demo/hooks)."
        )
        hooks.add_argument(
            "--hooks-only",
            action="store_true",
            help="Skip the reading history; ensure the base data and run the app hooks.",
        )

    def handle(self, *args, **options):
        if options["print_logins"]:
            self.stdout.write(logins_text())
            return
        if options["print_devices"]:
            self.stdout.write(json.dumps(devices_json()))
            return
        if options["totp"]:
            self.stdout.write(totp_code(loader.DEMO_TOTP_SECRET))
            return
        steps = [h.strip() for h in options["hooks"].split(",") if h.strip()] or None
        unknown = set(steps or ()) - {label for label, _ in loader.demo_hooks()}
        if unknown:
            known = ", ".join(label for label, _ in loader.demo_hooks())
            names = ", ".join(sorted(unknown))
            raise CommandError(f"Unknown demo step(s) {names}; known: {known}.")
        report = loader.demo_cooperative_load(
            seed=options["seed"],
            now=options["now"],
            history_days=options["history_days"],
            signed_days=options["signed_days"],
            run_hooks=not options["no_hooks"],
            run_history=not options["hooks_only"],
            live_intervals=max(0, options["live_intervals"]),
            hooks=steps,
        )
        made = {k: v for k, v in report.created.items() if v}
        timings = ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items())
        self.stdout.write(
            f"Demo cooperative: {len(report.context.members)} members, "
            f"{len(report.context.meters)} meters, history "
            f"{report.context.history_start:%Y-%m-%d %H:%M}..{report.context.now:%Y-%m-%d %H:%M} "
            f"UTC; created {made or 'nothing'} ({timings})"
        )
        for label, error in report.hook_errors.items():
            self.stderr.write(f"apps/demo/hooks/{label}.py failed:\n{error}")
        if report.hook_errors:
            raise CommandError(f"demo hooks failed: {', '.join(report.hook_errors)}")
