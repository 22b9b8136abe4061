"""The demo community's profiles (pure: no database)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from apps.demo import profiles
from apps.demo.keys import demo_device_identity, demo_device_key
from apps.demo.profiles import (
    asset_energy_wh,
    community,
    local_day_bounds,
    meter_energy_wh,
    meter_serial,
    profile_day,
    site_energy_wh,
    spec_for_serial,
)
from apps.meters.signing import SignedFields, reading_digest, recover_address, sign_reading

WEEK = (datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 8, tzinfo=UTC))


@pytest.fixture(scope="module")
def demo():
    return community()


def test_community_is_a_varied_village_of_about_a_hundred_households(demo):
    households = [h for h in demo.households if h.kind == "household"]
    assert 100 <= len(households) <= 120
    assert len({h.number for h in demo.households}) == len(demo.households)
    assert {h.member_kind for h in demo.households} == {"consumer", "prosumer", "producer"}
    assert all(1500 <= h.annual_kwh <= 6000 for h in households)
    assert all(-45 <= h.shift_minutes <= 45 and h.shift_minutes % 15 == 0 for h in households)
    # PV from the grid's 27 sgens plus the PV paired with its 16 batteries; EVs and heat pumps.
    assert sum(h.has_pv for h in demo.households) == 27 + 16
    assert sum(h.has_battery for h in demo.households) == 16
    assert sum(h.has_ev for h in demo.households) >= 10
    assert sum(h.has_heat_pump for h in demo.households) >= 10
    showcase = demo.household(demo.showcase_number)
    assert showcase.has_pv and showcase.has_battery and showcase.member_kind == "prosumer"


def test_no_two_households_have_the_same_load(demo):
    loads = np.stack([asset_energy_wh(h, "load", *WEEK) for h in demo.households])
    assert loads.shape == (len(demo.households), 7 * 96)
    for a, b in itertools.combinations(range(len(loads)), 2):
        assert not np.array_equal(loads[a], loads[b])
    corr = np.corrcoef(loads)
    off_diagonal = corr[~np.eye(len(loads), dtype=bool)]
    assert off_diagonal.max() < 0.95  # not just scaled copies of a few SimBench shapes


def test_energy_is_integer_wh_within_the_assets_capacity(demo):
    for h in demo.households[:40] + [demo.shared_pv, demo.shared_wind]:
        for kind in h.assets:
            values = asset_energy_wh(h, kind, *WEEK)
            assert values.dtype == np.int64
            limit = h.capacity_w(kind) // 4
            assert np.abs(values).max() <= limit
            if kind != "battery":
                assert values.min() >= 0


def test_a_range_gives_the_same_values_however_it_is_split(demo):
    battery_home = demo.household(demo.showcase_number)
    start, end = WEEK
    middle = start + timedelta(days=2, hours=13, minutes=45)
    for kind in battery_home.assets:
        whole = asset_energy_wh(battery_home, kind, start, end)
        parts = np.concatenate(
            [
                asset_energy_wh(battery_home, kind, start, middle),
                asset_energy_wh(battery_home, kind, middle, end),
            ]
        )
        assert np.array_equal(whole, parts), kind
    assert community() is demo  # cached and deterministic
    assert profiles.community.__wrapped__(profiles.DEMO_SEED).households == demo.households


def test_annual_consumption_matches_the_households_scale(demo):
    h = demo.household(5)
    year = asset_energy_wh(
        h, "load", datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    )
    # 365 of SimBench's 366 days, plus mean-one noise: within a few percent of the target.
    assert year.sum() / 1000 == pytest.approx(h.annual_kwh, rel=0.05)


def test_pv_follows_the_sun_and_the_battery_shifts_it_into_the_evening(demo):
    home = demo.household(demo.showcase_number)
    pv = asset_energy_wh(home, "pv", *WEEK).reshape(7, 96)
    battery = asset_energy_wh(home, "battery", *WEEK).reshape(7, 96)
    assert pv[:, 0:8].sum() == 0  # 00:00-02:00 UTC
    assert pv[:, 40:48].sum() > 0  # 10:00-12:00 UTC
    assert battery[:, 36:56].max() > 0  # charging around midday
    assert battery[:, 72:92].min() < 0  # discharging in the evening
    imports, exports = meter_energy_wh(home, "battery", *WEEK)
    assert np.array_equal(imports - exports, battery.ravel())
    assert imports.min() >= 0 and exports.min() >= 0
    # The site's grid exchange: the battery covers part of the evening load from stored PV.
    load = asset_energy_wh(home, "load", *WEEK)
    site_in, site_out = site_energy_wh(home, *WEEK)
    assert np.array_equal(site_in - site_out, load + battery.ravel() - pv.ravel())
    evening = np.zeros((7, 96), dtype=bool)
    evening[:, 72:92] = True
    assert (site_in - site_out)[evening.ravel()].sum() < load[evening.ravel()].sum()


@pytest.mark.parametrize(
    ("day", "intervals"),
    [(date(2026, 3, 29), 92), (date(2026, 10, 25), 100), (date(2026, 6, 1), 96)],
)
def test_local_days_have_92_96_or_100_quarter_hours(demo, day, intervals):
    start, end = local_day_bounds(day, "Europe/Berlin")
    h = demo.household(1)
    assert len(asset_energy_wh(h, "load", start, end)) == intervals
    assert len(asset_energy_wh(h, "pv", start, end)) == intervals


def test_dates_map_onto_the_2016_day_with_the_same_weekday():
    for day in (date(2026, 11, 22), date(2027, 1, 1), date(2026, 12, 31), date(2028, 2, 29)):
        mapped = date(2016, 1, 1) + timedelta(days=profile_day(day))
        assert mapped.weekday() == day.weekday()
        assert mapped.year == 2016
        assert abs(mapped.timetuple().tm_yday - day.timetuple().tm_yday) <= 7


def test_topology_splits_the_station_into_transformers_with_capacities(demo):
    names = {t.name for t in demo.transformers}
    assert len(names) >= 3 and {t.feeder for t in demo.transformers} == {
        f.name for f in demo.feeders
    }
    assert all(t.capacity_kva > 0 and t.vk_percent > t.vkr_percent > 0 for t in demo.transformers)
    assert all(f.capacity_kw > 0 for f in demo.feeders) and demo.substation.capacity_kva > 0
    assert {h.transformer for h in demo.households} == names
    assert demo.shared_pv.transformer in names
    assert demo.shared_wind.transformer == ""  # the wind plant is on the MV grid, not the village's


def test_the_wind_plant_is_a_share_of_a_real_simbench_turbine(demo):
    """500 kW of MV1.101's 2 MW turbine, with the turbine's own profile: it blows at night and in
    winter, unlike the village's PV."""
    wind = demo.shared_wind
    assert (wind.assets, wind.wind_kw, wind.wind_profile) == (("wind",), 500.0, "WP4")
    december = asset_energy_wh(wind, "wind", datetime(2026, 12, 1, tzinfo=UTC),
                               datetime(2026, 12, 8, tzinfo=UTC))  # fmt: skip
    hours = december.reshape(-1, 4).sum(axis=1)
    night = hours.reshape(7, 24)[:, [0, 1, 2, 3, 20, 21, 22, 23]]
    assert night.sum() > 0 and 0 < hours.mean() < 500_000


def test_demo_device_keys_are_deterministic_and_sign_verifiable_readings():
    assert demo_device_key("DEMO-001-H") == demo_device_key("DEMO-001-H")
    assert demo_device_key("DEMO-001-H") != demo_device_key("DEMO-002-H")
    public_key, address = demo_device_identity("DEMO-001-H")
    assert len(public_key) == 130 and public_key.startswith("04")
    fields = SignedFields("DEMO-001-H", 1, 1_764_000_000, 900, 250, 0)
    signature = sign_reading(demo_device_key("DEMO-001-H"), fields)
    assert recover_address(reading_digest(fields), signature) == address


def test_meter_serials_lead_back_to_their_site_and_asset(demo):
    serials = set()
    for h in demo.households + [demo.shared_pv, demo.shared_wind]:
        for kind in h.assets:
            serial = meter_serial(h, kind)
            serials.add(serial)
            assert spec_for_serial(serial) == (h, kind)
    assert len(serials) == sum(len(h.assets) for h in demo.households) + 2
    first = demo.household(1)
    missing = next(k for k in ("battery", "ev", "heat_pump") if k not in first.assets)
    assert spec_for_serial(meter_serial(first, missing)) is None
    assert spec_for_serial("SIM-0001") is None
    assert spec_for_serial("DEMO-999-H") is None


@pytest.mark.slow
def test_committed_data_is_what_simbench_ships(tmp_path):
    """The small committed files are an exact extraction of the installed simbench package."""
    from apps.demo import simbench_extract

    simbench_extract.extract(tmp_path, with_mv=False)  # the MV grid's 8 s load is skipped
    committed = simbench_extract.DATA_DIR
    stored_grid = json.loads((committed / simbench_extract.GRID_FILE).read_text())
    assert stored_grid.pop("mv")["feeder_capacity_kw"] > 0
    assert json.loads((tmp_path / simbench_extract.GRID_FILE).read_text()) == stored_grid
    with (
        np.load(tmp_path / simbench_extract.PROFILES_FILE) as fresh,
        np.load(committed / simbench_extract.PROFILES_FILE) as stored,
    ):
        assert list(fresh["names"]) == list(stored["names"])
        assert np.array_equal(fresh["q"], stored["q"])
        assert np.allclose(fresh["scales"], stored["scales"])
