"""`manage.py forecast_backtest --csv PATH`: rolling-origin backtest of every forecasting method
on any `timestamp,value` CSV; prints JSON (per method MAPE, nMAE, MASE, fit time; chosen method)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from apps.grid.forecasting.backtest import rolling_origin_backtest
from apps.grid.forecasting.methods import METHODS
from apps.grid.forecasting.series import SeriesError, load_series
from apps.grid.forecasting.solar import clear_sky_fn


class Command(BaseCommand):
    help = "Backtest the forecasting methods on a timestamp,value CSV and print JSON."

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True, help="CSV with columns timestamp,value")
        parser.add_argument("--horizon", type=int, default=None, help="steps (default: 1 day)")
        parser.add_argument("--train-days", type=int, default=28)
        parser.add_argument("--test-days", type=int, default=7)
        parser.add_argument(
            "--methods", default="", help=f"comma-separated subset of: {', '.join(METHODS)}"
        )
        parser.add_argument(
            "--pv-site",
            default="",
            help="LAT,LON: the series is PV; add clear-sky irradiance (pvlib) as a regressor",
        )

    def handle(self, *args, **options):
        methods = [m.strip() for m in options["methods"].split(",") if m.strip()] or None
        unknown = [m for m in methods or [] if m not in METHODS]
        if unknown:
            raise CommandError(f"Unknown method(s) {unknown}; choose from {list(METHODS)}.")
        exog_fn = None
        if options["pv_site"]:
            try:
                lat, lon = (float(x) for x in options["pv_site"].split(","))
            except ValueError as exc:
                raise CommandError("--pv-site must be LAT,LON, e.g. 52.52,13.40") from exc
            exog_fn = clear_sky_fn(lat, lon)
        try:
            clean = load_series(options["csv"])
            result = rolling_origin_backtest(
                clean,
                horizon=options["horizon"],
                train_days=options["train_days"],
                test_days=options["test_days"],
                methods=methods,
                exog_fn=exog_fn,
            )
        except SeriesError as exc:
            raise CommandError(exc.message) from exc
        out = result.as_dict()
        out["input"] = {
            "rows": int(len(clean.values)),
            "start": clean.values.index[0].isoformat(),
            "end": clean.values.index[-1].isoformat(),
            **clean.report,
        }
        out["notes"] = clean.notes + out["notes"]
        self.stdout.write(json.dumps(out, indent=2))
