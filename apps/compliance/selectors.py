"""Reads of the compliance app for other apps and pages."""

from __future__ import annotations

from apps.compliance.models import ErasureRequest


def staff_queue_counts() -> dict[str, int]:
    """The staff home's data-rights work: erasure requests not yet handled."""
    return {
        "erasure_requests": ErasureRequest.objects.filter(
            status=ErasureRequest.Status.REQUESTED
        ).count()
    }
