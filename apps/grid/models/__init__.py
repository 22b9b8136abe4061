"""Grid models: topology, forecasts, dispatch, demand response, stability."""

from apps.grid.models.dispatch import DeviceCommand, DispatchPlan, FlexibleDevice
from apps.grid.models.dr import DREvent, DRParticipation
from apps.grid.models.forecasts import Forecast, ForecastModelChoice, SeriesKind
from apps.grid.models.ocpp import (
    ChargePoint,
    ChargePointMeterValue,
    ChargingSession,
    ChargingToken,
)
from apps.grid.models.openadr import OpenADREventDelivery, OpenADRReport, OpenADRVen
from apps.grid.models.stability import GridAlert, StabilityAssessment, StateSource
from apps.grid.models.topology import ConnectionPoint, Feeder, GridLine, Substation, Transformer

__all__ = [
    "ChargePoint",
    "ChargePointMeterValue",
    "ChargingSession",
    "ChargingToken",
    "ConnectionPoint",
    "DREvent",
    "DRParticipation",
    "DeviceCommand",
    "DispatchPlan",
    "Feeder",
    "FlexibleDevice",
    "Forecast",
    "ForecastModelChoice",
    "GridAlert",
    "GridLine",
    "OpenADREventDelivery",
    "OpenADRReport",
    "OpenADRVen",
    "SeriesKind",
    "StabilityAssessment",
    "StateSource",
    "Substation",
    "Transformer",
]
