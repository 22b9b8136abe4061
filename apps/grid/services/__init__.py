"""Grid write services (forecasts, dispatch, demand response, stability)."""

from apps.grid.services.dr import (
    dr_event_cancel,
    dr_event_create,
    dr_event_measure,
    dr_event_modify,
    dr_event_publish,
    dr_events_advance,
    dr_opt_set,
)

__all__ = [
    "dr_event_cancel",
    "dr_event_create",
    "dr_event_measure",
    "dr_event_modify",
    "dr_event_publish",
    "dr_events_advance",
    "dr_opt_set",
]
