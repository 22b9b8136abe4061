"""The demo meters' energy for the meter simulator (`simulate_meters`): from the demo profiles,
with `apps.meters.simulator.synthetic_energy` for meters that are not demo meters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from apps.demo.profiles import meter_energy_wh, spec_for_serial
from apps.meters.simulator import STEP, synthetic_energy


def demo_energy_source() -> Callable[[str, int], tuple[int, int]]:
    """(serial, start) -> (import_wh, export_wh) from the demo profiles, cached per meter/day."""
    cache: dict[tuple[str, int], tuple[list[int], list[int]]] = {}

    def energy(serial: str, start: int) -> tuple[int, int]:
        found = spec_for_serial(serial) if serial.startswith("DEMO-") else None
        if found is None:
            return synthetic_energy(serial, start)
        day = start - start % 86400
        if (serial, day) not in cache:
            spec, kind = found
            imports, exports = meter_energy_wh(
                spec, kind, datetime.fromtimestamp(day, UTC),
                datetime.fromtimestamp(day + 86400, UTC),
            )  # fmt: skip
            cache[(serial, day)] = (imports.tolist(), exports.tolist())
        imports, exports = cache[(serial, day)]
        index = (start - day) // STEP
        return int(imports[index]), int(exports[index])

    return energy
