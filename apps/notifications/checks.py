"""Deployment check of the Web Push (VAPID) key (`manage.py check --deploy`; at start in
production): push must not be signed with the key derived from SECRET_KEY for development."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error

from apps.core.checks import deployment_check


@deployment_check
def check_vapid_keys(app_configs=None, **kwargs) -> list[Error]:
    from apps.notifications import vapid

    if vapid.is_development_key():
        return [
            Error(
                "No VAPID key is configured: web push would be signed with the development key "
                "derived from SECRET_KEY.",
                hint="Set VAPID_PRIVATE_KEY (base64url P-256 private key), VAPID_PUBLIC_KEY and "
                "VAPID_SUBJECT (mailto: or https: contact of the cooperative).",
                id="energysphere.E301",
            )
        ]
    errors: list[Error] = []
    try:
        derived = vapid.public_key_b64()
    except ValueError as exc:
        return [Error(f"VAPID_PRIVATE_KEY is not a P-256 key: {exc}", id="energysphere.E302")]
    public = str(settings.VAPID_PUBLIC_KEY or "").strip().rstrip("=")
    if public and public != derived:
        errors.append(
            Error(
                "VAPID_PUBLIC_KEY is not the public key of VAPID_PRIVATE_KEY.",
                id="energysphere.E303",
            )
        )
    subject = str(settings.VAPID_SUBJECT or "")
    if not subject.startswith(("mailto:", "https://")) or subject.endswith("@localhost"):
        errors.append(
            Error(
                f"VAPID_SUBJECT {subject!r} is not a contact push services can reach.",
                hint="Use mailto:<address> or an https: URL of the cooperative.",
                id="energysphere.E304",
            )
        )
    return errors
