"""Deployment check of the report-signing key (`manage.py check --deploy`; at start in
production): reports must not be sealed with the published development key."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.checks import Error

from apps.core.checks import deployment_check


@deployment_check
def check_report_signing_key(app_configs=None, **kwargs) -> list[Error]:
    path = settings.REPORT_SIGNING_KEYSTORE_PATH
    if not path:
        return [
            Error(
                "No report-signing key is configured: reports would be sealed with the published "
                "development key, so anyone could forge them.",
                hint="Set REPORT_SIGNING_KEYSTORE_PATH and REPORT_SIGNING_KEYSTORE_PASSWORD "
                "(a keystore separate from the chain keys) and publish REPORT_SIGNER_ADDRESS.",
                id="energysphere.E201",
            )
        ]
    if not Path(path).is_file():
        return [
            Error(f"REPORT_SIGNING_KEYSTORE_PATH {path} is not a file.", id="energysphere.E202")
        ]
    return []
