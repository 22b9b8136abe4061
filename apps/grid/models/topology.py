"""Grid topology: substation → feeder → transformer → connection point (member site), plus the
LV lines between buses (impedance data for the pandapower model)."""

from __future__ import annotations

from django.db import models


class Substation(models.Model):
    name = models.CharField(max_length=100, unique=True)
    voltage_kv = models.DecimalField(max_digits=7, decimal_places=2, default=20)
    capacity_kva = models.PositiveIntegerField()
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class Feeder(models.Model):
    substation = models.ForeignKey(Substation, on_delete=models.PROTECT, related_name="feeders")
    name = models.CharField(max_length=100, unique=True)
    capacity_kw = models.PositiveIntegerField()

    def __str__(self) -> str:
        return self.name


class Transformer(models.Model):
    feeder = models.ForeignKey(Feeder, on_delete=models.PROTECT, related_name="transformers")
    name = models.CharField(max_length=100, unique=True)
    capacity_kva = models.PositiveIntegerField()
    # Impedance data where known (from the simbench model), per unit / percent.
    vk_percent = models.FloatField(null=True, blank=True)
    vkr_percent = models.FloatField(null=True, blank=True)
    std_type = models.CharField(max_length=100, blank=True)
    hv_kv = models.FloatField(default=20.0)
    lv_kv = models.FloatField(default=0.4)
    # Name of the LV busbar in the power-flow model (default: "<name> LV").
    lv_bus_name = models.CharField(max_length=100, blank=True)
    # Power factor assumed when comparing active power with the kVA rating.
    power_factor = models.FloatField(default=0.95)

    def __str__(self) -> str:
        return self.name

    @property
    def lv_bus(self) -> str:
        return self.lv_bus_name or f"{self.name} LV"

    @property
    def capacity_w(self) -> int:
        """Active-power limit used by dispatch: kVA × power factor."""
        return int(self.capacity_kva * 1000 * self.power_factor)


class GridLine(models.Model):
    """An LV cable between two buses of a transformer's area."""

    transformer = models.ForeignKey(Transformer, on_delete=models.CASCADE, related_name="lines")
    name = models.CharField(max_length=100, unique=True)
    from_bus = models.CharField(max_length=100)
    to_bus = models.CharField(max_length=100)
    length_km = models.FloatField()
    std_type = models.CharField(max_length=100, blank=True)
    r_ohm_per_km = models.FloatField(null=True, blank=True)
    x_ohm_per_km = models.FloatField(null=True, blank=True)
    c_nf_per_km = models.FloatField(null=True, blank=True)
    max_i_ka = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class ConnectionPoint(models.Model):
    """A member's site on the grid, identified by its grid bus. A member may hold several
    sites, each with its own supply contract (billing) and meters."""

    member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="connection_points"
    )
    transformer = models.ForeignKey(
        Transformer, on_delete=models.PROTECT, related_name="connection_points"
    )
    code = models.CharField(max_length=40, unique=True)  # e.g. metering point id
    bus_name = models.CharField(max_length=100, blank=True)  # bus in the power-flow model
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    contracted_power_w = models.PositiveIntegerField(default=30_000)
    # Demand response: a site takes part in events by default unless it opted out for good.
    dr_enrolled = models.BooleanField(default=True)
    # The site's postal address and what the member declared when the site joined.
    street = models.CharField(max_length=200, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    city = models.CharField(max_length=100, blank=True)
    expected_annual_wh = models.BigIntegerField(
        null=True, blank=True, help_text="Expected consumption per year (Wh)."
    )
    pv_peak_w = models.PositiveIntegerField(
        null=True, blank=True, help_text="Installed PV peak power (W), if any."
    )

    def __str__(self) -> str:
        return self.code
