"""Issue 16: upgrading a deployment is a new deployment plus a state migration. After
`chain_deploy --upgrade` the old addresses are kept, old anchors still verify against the oracle
that holds them, settlement roots and money balances are on the new EnergyTrading, and the next
anchoring run registers the meter keys on the new oracle. Real PostgreSQL and anvil."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.chain import client
from apps.chain.anchoring import meter_interval_anchor, reading_verify
from apps.chain.models import ChainIntent, ContractDeployment, RetiredContract
from apps.chain.outbox import chain_outbox_sweep
from apps.chain.services import chain_contracts_upgrade, chain_intent_submit
from apps.meters.services import BackfillRow, readings_backfill
from apps.meters.tests.factories import MeterFactory

from .test_contracts import via_multisig

pytestmark = pytest.mark.chain

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ROOT = "0x" + "7e" * 32
PAUSABLE = ("EnergyToken", "EnergyTrading", "MeterOracle", "GridBalancer", "RenewableIncentive")


def _reading(meter, start) -> None:
    readings_backfill(
        rows=[BackfillRow(meter_id=meter.pk, interval_start=start, import_wh=321, export_wh=0,
                          private_key=meter.test_key)]
    )  # fmt: skip


def _sweep_all_confirmed() -> None:
    chain_outbox_sweep()
    bad = ChainIntent.objects.exclude(status=ChainIntent.Status.CONFIRMED)
    assert not bad.exists(), list(bad.values_list("intent", "status", "error"))


def test_upgrade_keeps_balances_roots_and_anchors_verifiable(chain):
    a, b = chain.others[4].address, chain.others[5].address
    chain_intent_submit(
        intent="settlement_apply",
        payload={"settlement_id": 11, "trades_root": ROOT, "members": [a, b],
                 "money_deltas_minor": [300, -300]},
        idempotency_key="upgrade-test-settlement",
    )  # fmt: skip
    meter = MeterFactory()
    _reading(meter, T0)
    old_anchor = meter_interval_anchor(interval_start=T0)
    _sweep_all_confirmed()
    assert reading_verify(serial=meter.serial, interval_start=T0).verdict == "OK"
    old = {r.name: r.address for r in ContractDeployment.objects.filter(network="local")}

    # not while the old contracts still accept changes
    with pytest.raises(client.ChainConfigError, match="Pause .*through the multisig"):
        chain_contracts_upgrade()
    for name in PAUSABLE:
        via_multisig(chain, name, "pause")

    result = chain_contracts_upgrade()
    new = result["addresses"]
    assert all(new[n] != old[n] for n in old)
    assert result["roots"] == 1 and result["balances"] == {a: 300, b: -300}
    retired = {r.name: r for r in RetiredContract.objects.filter(network="local")}
    assert {n: r.address for n, r in retired.items()} == old
    assert all(retired[n].replaced_by == new[n] for n in old)
    _sweep_all_confirmed()

    # balances and the settlement root are on the new EnergyTrading
    trading = client.contract("EnergyTrading")
    assert trading.address == new["EnergyTrading"]
    assert trading.functions.balanceOf(a).call() == 300
    assert trading.functions.balanceOf(b).call() == -300
    assert trading.functions.settlementRoot(11).call() == bytes.fromhex(ROOT[2:])
    # the old anchor still verifies, on chain, against the old (paused) oracle that holds it
    out = reading_verify(serial=meter.serial, interval_start=T0)
    assert out.verdict == "OK", out.reasons
    assert out.onchain_root == old_anchor.root and out.signature_valid_onchain is True
    # a new interval anchors on the new oracle, which gets the meter's key registered again
    later = datetime(2026, 3, 2, 12, 15, tzinfo=UTC)
    _reading(meter, later)
    meter_interval_anchor(interval_start=later)
    _sweep_all_confirmed()
    out = reading_verify(serial=meter.serial, interval_start=later)
    assert out.verdict == "OK", out.reasons
    registrations = ChainIntent.objects.filter(intent="meter_register")
    assert {r.contract_address for r in registrations} == {old["MeterOracle"], new["MeterOracle"]}
