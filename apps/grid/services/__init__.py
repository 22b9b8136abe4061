"""Grid write services (forecasts, dispatch, demand response, stability)."""

from apps.grid.services.dispatch import (
    device_command_acknowledge,
    device_commands_expire,
    device_commands_publish,
    dispatch_plan_create,
)
from apps.grid.services.dr import (
    dr_event_cancel,
    dr_event_create,
    dr_event_measure,
    dr_event_modify,
    dr_event_publish,
    dr_events_advance,
    dr_opt_set,
)
from apps.grid.services.forecasts import forecast_issue, forecast_model_choose
from apps.grid.services.sites import connection_point_create
from apps.grid.services.stability import (
    stability_assess,
    stability_assess_forecast,
    stability_assess_measured,
)

__all__ = [
    "connection_point_create",
    "device_command_acknowledge",
    "device_commands_expire",
    "device_commands_publish",
    "dispatch_plan_create",
    "dr_event_cancel",
    "dr_event_create",
    "dr_event_measure",
    "dr_event_modify",
    "dr_event_publish",
    "dr_events_advance",
    "dr_opt_set",
    "forecast_issue",
    "forecast_model_choose",
    "stability_assess",
    "stability_assess_forecast",
    "stability_assess_measured",
]
