"""Clear-sky irradiance for a site (pvlib, computed locally: no network)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd


def clear_sky_ghi(index: pd.DatetimeIndex, *, latitude: float, longitude: float) -> np.ndarray:
    """Global horizontal clear-sky irradiance (W/m²) at the interval *midpoints* of `index`."""
    import pvlib

    if len(index) == 0:
        return np.zeros(0)
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta(minutes=15)
    mid = index + step / 2
    location = pvlib.location.Location(latitude, longitude, tz="UTC")
    try:
        cs = location.get_clearsky(mid, model="ineichen")
    except (OSError, ValueError, ImportError):
        cs = location.get_clearsky(mid, model="haurwitz")
    return cs["ghi"].to_numpy(dtype=float)


def clear_sky_fn(latitude: float, longitude: float):
    return partial(clear_sky_ghi, latitude=latitude, longitude=longitude)
