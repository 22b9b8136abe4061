"""Signals the meters app sends to the apps above it in the app order, which it never imports.

`device_status_recorded` is sent by `apps.meters.services.meter_status_record` after a signed,
fresh status message was recorded that reports device state, with `serial` (the meter's serial,
the topic's), `state` (`apps.meters.device_messages.status_device_state`: any of `soc_pct`,
`ev_plugged`, `ev_charging`) and `at` (when it was received, UTC). `apps.grid.receivers` stores
it as the flexible device's state.
"""

from django.dispatch import Signal

device_status_recorded = Signal()
