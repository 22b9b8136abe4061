"""Grid configuration from the environment (django-environ) with working local defaults.
Override any of them in Django settings (same name) or in the environment."""

from __future__ import annotations

import environ
from django.conf import settings

_env = environ.Env()

_DEFAULTS = {
    # Rolling-origin backtest used to choose each series' model.
    "GRID_FORECAST_TRAIN_DAYS": _env.int("GRID_FORECAST_TRAIN_DAYS", default=28),
    "GRID_FORECAST_TEST_DAYS": _env.int("GRID_FORECAST_TEST_DAYS", default=7),
    # Per-meter series (hundreds) use a cheaper candidate set and fewer origins; aggregates
    # (community, feeders, transformers) use every method. The two weekly-season methods cost
    # milliseconds to a tenth of a second per origin (daily Holt-Winters: about two seconds).
    "GRID_METER_METHODS": _env.list(
        "GRID_METER_METHODS",
        default=[
            "seasonal_naive_daily",
            "seasonal_naive_weekly",
            "seasonal_mean_4w",
            "holt_winters_weekly",
            "weekly_profile_ar",
        ],
    ),
    "GRID_METER_TEST_DAYS": _env.int("GRID_METER_TEST_DAYS", default=3),
    # A series' model choice is re-done by backtest when older than this.
    "GRID_MODEL_CHOICE_MAX_AGE_DAYS": _env.int("GRID_MODEL_CHOICE_MAX_AGE_DAYS", default=7),
    # Forecast prices for dispatch (per kWh): a time-of-use tariff in cooperative local time.
    "GRID_PRICE_DAY": _env.float("GRID_PRICE_DAY", default=0.30),
    "GRID_PRICE_PEAK": _env.float("GRID_PRICE_PEAK", default=0.42),
    "GRID_PRICE_NIGHT": _env.float("GRID_PRICE_NIGHT", default=0.22),
    "GRID_PEAK_HOURS": _env.list("GRID_PEAK_HOURS", cast=int, default=[17, 21]),
    "GRID_NIGHT_HOURS": _env.list("GRID_NIGHT_HOURS", cast=int, default=[0, 6]),
    "GRID_FEED_IN_PRICE": _env.float("GRID_FEED_IN_PRICE", default=0.08),
    # A device whose last N commands expired unanswered is excluded from dispatch and flagged.
    "GRID_DEVICE_MISSED_COMMANDS": _env.int("GRID_DEVICE_MISSED_COMMANDS", default=2),
    # A sent command without acknowledgement for this long is marked expired.
    "GRID_COMMAND_ACK_TIMEOUT_S": _env.int("GRID_COMMAND_ACK_TIMEOUT_S", default=300),
    # OCPP central system (`manage.py ocpp_server`): ws://127.0.0.1:<port>/ocpp/<charge point>.
    "OCPP_PORT": _env.int("OCPP_PORT", default=9016),
    # Automatic demand response when the dispatch plan still overloads a transformer:
    # "auto" creates and publishes the event, "staff" creates a draft for staff to publish,
    # "off" does nothing. Only overloads at least the lead time ahead are answered (members and
    # devices need notice); an event lasts at most GRID_AUTO_DR_MAX_HOURS.
    "GRID_AUTO_DR_MODE": _env.str("GRID_AUTO_DR_MODE", default="auto"),
    "GRID_AUTO_DR_LEAD_MINUTES": _env.int("GRID_AUTO_DR_LEAD_MINUTES", default=60),
    "GRID_AUTO_DR_MAX_HOURS": _env.int("GRID_AUTO_DR_MAX_HOURS", default=4),
    # Completed automatic events are measured and rewarded once their meter data is in.
    "GRID_AUTO_DR_MEASURE_AFTER_HOURS": _env.int("GRID_AUTO_DR_MEASURE_AFTER_HOURS", default=2),
    # OpenADR 2.0b VTN (`manage.py openadr_vtn`): http://127.0.0.1:<port>/OpenADR2/Simple/2.0b.
    "OPENADR_VTN_PORT": _env.int("OPENADR_VTN_PORT", default=9017),
    # Site used for clear-sky irradiance when a series has no coordinates (Berlin).
    "GRID_DEFAULT_LATITUDE": _env.float("GRID_DEFAULT_LATITUDE", default=52.52),
    "GRID_DEFAULT_LONGITUDE": _env.float("GRID_DEFAULT_LONGITUDE", default=13.40),
}


def get(name: str):
    return getattr(settings, name, _DEFAULTS[name])
