"""Receivers of signals sent by apps below the grid app in the app order."""

from __future__ import annotations

from datetime import datetime


def on_device_status_recorded(sender, *, serial: str, state: dict, at: datetime, **kwargs) -> None:
    """A meter's signed status reported device state: store it as its flexible device's."""
    from apps.grid.services.dispatch import flexible_device_state_record

    flexible_device_state_record(serial=serial, state=state, at=at)
