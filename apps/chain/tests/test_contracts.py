"""Contract tests against anvil: roles, happy paths, every revert, replay protection, events,
the staff multisig (including a rejected single-signer attempt) and pausing."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_account.messages import encode_typed_data
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from apps.chain import merkle
from apps.chain.approvals import settlement_typed_data
from apps.chain.client import artifact, decode_revert
from apps.chain.deploy import multisig_execute, role
from apps.chain.intents import meter_key, token_id
from apps.meters.signing import SignedFields, address_from_public_key, reading_digest, sign_reading

pytestmark = pytest.mark.chain

H = 1_767_225_600  # 2026-01-01T00:00Z, a whole hour
B32 = b"\x11" * 32


def send(chain, fn, sender):
    tx = fn.transact({"from": sender.address if hasattr(sender, "address") else sender})
    receipt = chain.w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["status"] == 1
    return receipt


def reverts(fn, sender, error: str) -> str:
    with pytest.raises(ContractLogicError) as info:
        fn.transact({"from": sender.address})
    reason = decode_revert(info.value.data)
    assert reason.startswith(error), reason
    return reason


def register_custodial(chain, *accounts) -> None:
    """Register accounts whose keys the test holds as custodial (each signs its own statement)."""
    token = chain.contract("EnergyToken")
    for account in accounts:
        digest = token.functions.custodyDigest(account.address).call()
        signature = account.unsafe_sign_hash(digest).signature
        send(chain, token.functions.registerCustodial(account.address, signature),
             chain.duty("certificates"))  # fmt: skip


def via_multisig(chain, name: str, fn_name: str, *args, signers=None):
    c = chain.contract(name)
    data = c.functions[fn_name](*args)._encode_transaction_data()
    return multisig_execute(
        chain.w3, chain.address("StaffMultisig"), signers or chain.signers[:2],
        target=c.address, data=bytes.fromhex(data[2:]),
    )  # fmt: skip


# --- roles and multisig ------------------------------------------------------------------------


def test_privileged_roles_belong_to_the_multisig_only(chain):
    ms = chain.address("StaffMultisig")
    op = chain.operator.address  # the deployer keeps nothing
    for name in ("EnergyToken", "EnergyTrading", "MeterOracle", "GridBalancer",
                 "RenewableIncentive"):  # fmt: skip
        c = chain.contract(name)
        assert c.functions.hasRole(b"\x00" * 32, ms).call()
        assert c.functions.hasRole(role("PAUSER_ROLE"), ms).call()
        assert not c.functions.hasRole(b"\x00" * 32, op).call()
        assert not c.functions.hasRole(role("PAUSER_ROLE"), op).call()
        reverts(c.functions.grantRole(role("PAUSER_ROLE"), op), chain.operator,
                "AccessControlUnauthorizedAccount")  # fmt: skip
        reverts(c.functions.pause(), chain.operator, "AccessControlUnauthorizedAccount")
    token = chain.contract("EnergyToken")
    assert token.functions.hasRole(role("CUSTODIAN_ROLE"), chain.address("EnergyTrading")).call()
    # each duty key holds its own operational role and no other
    duties = {
        ("EnergyToken", "MINTER_ROLE"): "mint",
        ("EnergyToken", "CUSTODIAN_ROLE"): "certificates",
        ("EnergyTrading", "SETTLER_ROLE"): "settlement",
        ("MeterOracle", "ORACLE_ROLE"): "anchoring",
        ("MeterOracle", "DOCUMENT_ROLE"): "documents",
        ("GridBalancer", "RECORDER_ROLE"): "grid",
        ("RenewableIncentive", "REWARDER_ROLE"): "rewards",
    }
    for (name, r), duty in duties.items():
        c = chain.contract(name)
        for other in set(duties.values()) | {"deployer"}:
            holder = chain.operator if other == "deployer" else chain.duty(other)
            assert c.functions.hasRole(role(r), holder.address).call() == (other == duty), (
                r,
                other,
            )
    assert chain.contract("MeterOracle").functions.hasRole(role("METER_ADMIN_ROLE"), ms).call()


def test_a_single_signer_cannot_execute(chain):
    ms = chain.contract("StaffMultisig")
    token = chain.contract("EnergyToken")
    data = token.functions.pause()._encode_transaction_data()
    send(chain, ms.functions.propose(token.address, 0, data), chain.signers[0])
    assert reverts(ms.functions.execute(0), chain.signers[0], "NotEnoughApprovals") == (
        "NotEnoughApprovals(1, 2)"
    )
    reverts(ms.functions.approve(0), chain.signers[0], "AlreadyApproved")
    reverts(ms.functions.propose(token.address, 0, data), chain.operator, "NotSigner")
    reverts(ms.functions.approve(0), chain.others[0], "NotSigner")
    # approve then revoke: still one approval
    send(chain, ms.functions.approve(0), chain.signers[1])
    send(chain, ms.functions.revoke(0), chain.signers[1])
    reverts(ms.functions.revoke(0), chain.signers[1], "NotApproved")
    reverts(ms.functions.execute(0), chain.signers[0], "NotEnoughApprovals")
    assert not token.functions.paused().call()
    # second signer approves: executes once, and only once
    send(chain, ms.functions.approve(0), chain.signers[2])
    receipt = send(chain, ms.functions.execute(0), chain.signers[1])
    assert token.functions.paused().call()
    assert ms.events.Executed().process_receipt(receipt, errors=DISCARD)[0]["args"]["id"] == 0
    reverts(ms.functions.execute(0), chain.signers[0], "AlreadyExecuted")
    reverts(ms.functions.approve(7), chain.signers[0], "UnknownProposal")


def test_multisig_reports_a_failing_call_and_refuses_a_threshold_of_one(chain):
    ms = chain.contract("StaffMultisig")
    token = chain.contract("EnergyToken")
    data = token.functions.unpause()._encode_transaction_data()  # not paused: reverts
    send(chain, ms.functions.propose(token.address, 0, data), chain.signers[0])
    send(chain, ms.functions.approve(0), chain.signers[1])
    assert reverts(ms.functions.execute(0), chain.signers[0], "CallFailed")
    art = artifact("StaffMultisig")
    factory = chain.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    for signers, threshold in (([chain.signers[0].address], 1), ([chain.signers[0].address], 2)):
        with pytest.raises(ContractLogicError) as info:
            factory.constructor(signers, threshold).transact({"from": chain.operator.address})
        assert decode_revert(info.value.data) == "InvalidThreshold()"


# --- EnergyToken -------------------------------------------------------------------------------


def test_token_id_matches_python_and_rejects_partial_hours(chain):
    token = chain.contract("EnergyToken")
    assert token.functions.tokenIdFor(42, H).call() == token_id(42, H)
    reverts(token.functions.tokenIdFor(42, H + 5), chain.operator, "NotWholeHour")


def test_certificates_mint_transfer_claim_cancel(chain):
    token = chain.contract("EnergyToken")
    op, alice, bob = chain.duty("mint"), chain.others[0], chain.others[1]
    custodian = chain.duty("certificates")
    register_custodial(chain, alice, bob)
    tid = token_id(7, H)
    receipt = send(chain, token.functions.mint(alice.address, tid, 5_000, B32), op)
    issued = token.events.CertificateIssued().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (issued["id"], issued["to"], issued["amountWh"]) == (tid, alice.address, 5_000)
    assert token.functions.balanceOf(alice.address, tid).call() == 5_000
    reverts(token.functions.mint(alice.address, tid, 5_000, B32), op, "AlreadyIssued")
    reverts(token.functions.mint(alice.address, tid, 0, b"\x12" * 32), op, "ZeroAmount")
    reverts(token.functions.mint(alice.address, tid, 1, b"\x13" * 32), alice,
            "AccessControlUnauthorizedAccount")  # fmt: skip

    send(chain, token.functions.custodianTransfer(alice.address, bob.address, tid, 1_500),
         custodian)  # fmt: skip
    assert token.functions.balanceOf(bob.address, tid).call() == 1_500
    reverts(token.functions.custodianTransfer(alice.address, bob.address, tid, 1), bob,
            "AccessControlUnauthorizedAccount")  # fmt: skip
    reverts(token.functions.custodianTransfer(bob.address, alice.address, tid, 9_999), custodian,
            "ERC1155InsufficientBalance")  # fmt: skip

    # a holder with their own wallet claims (retires) with a beneficiary reference
    receipt = send(chain, token.functions.claim(tid, 500, b"\x22" * 32), bob)
    claimed = token.events.CertificateClaimed().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert claimed["holder"] == bob.address and claimed["beneficiaryHash"] == b"\x22" * 32
    send(chain, token.functions.claimFor(alice.address, tid, 500, b"\x23" * 32), custodian)
    reverts(token.functions.claimFor(alice.address, tid, 1, B32), alice,
            "AccessControlUnauthorizedAccount")  # fmt: skip
    receipt = send(chain, token.functions.cancel(alice.address, tid, 1_000, b"\x33" * 32), op)
    assert (
        token.events.CertificateCancelled().process_receipt(receipt, errors=DISCARD)[0]["args"][
            "amountWh"
        ]
        == 1_000
    )
    reverts(token.functions.cancel(alice.address, tid, 1, B32), bob,
            "AccessControlUnauthorizedAccount")  # fmt: skip
    reverts(token.functions.claim(tid, 0, B32), bob, "ZeroAmount")
    assert token.functions.balanceOf(alice.address, tid).call() == 2_000
    assert token.functions.balanceOf(bob.address, tid).call() == 1_000


def test_paused_token_refuses_moves_until_staff_unpause(chain):
    token = chain.contract("EnergyToken")
    tid = token_id(1, H)
    send(chain, token.functions.mint(chain.others[0].address, tid, 10, B32), chain.duty("mint"))
    via_multisig(chain, "EnergyToken", "pause")
    reverts(token.functions.mint(chain.others[0].address, tid, 10, b"\x44" * 32),
            chain.duty("mint"), "EnforcedPause")  # fmt: skip
    reverts(token.functions.claim(tid, 1, B32), chain.others[0], "EnforcedPause")
    via_multisig(chain, "EnergyToken", "unpause", signers=chain.signers[1:])
    send(chain, token.functions.claim(tid, 1, B32), chain.others[0])


# --- EnergyTrading -----------------------------------------------------------------------------


def _trades(chain, settlement_id: int):
    seller, buyer = chain.others[0].address, chain.others[1].address
    rows = [
        {"settlement_id": settlement_id, "trade_id": i, "seller": seller, "buyer": buyer,
             "interval_start": H + 900 * i, "energy_wh": 100 * i, "amount_minor": 3 * i}
        for i in range(1, 6)
    ]  # fmt: skip
    leaves = [merkle.trade_leaf(**r) for r in rows]
    return leaves, merkle.build(leaves)


def test_settlement_applies_money_credits_and_once_only(chain):
    trading, token = chain.contract("EnergyTrading"), chain.contract("EnergyToken")
    op, seller, buyer = chain.duty("settlement"), chain.others[0], chain.others[1]
    register_custodial(chain, seller, buyer)
    tid = token_id(3, H)
    send(chain, token.functions.mint(seller.address, tid, 2_000, B32), chain.duty("mint"))
    leaves, tree = _trades(chain, 9)
    members = [seller.address, buyer.address, op.address]
    deltas = [45, -50, 5]
    moves = [(seller.address, buyer.address, tid, 1_500)]
    fn = chain.settle(9, tree.root, members, deltas, moves)
    digest = trading.functions.settlementDigest(9, tree.root, members, deltas, moves).call()
    typed = settlement_typed_data(
        settlement_id=9, trades_root=tree.root, members=members, money_deltas=deltas,
        credit_moves=moves, chain_id=chain.w3.eth.chain_id, contract=trading.address,
    )  # fmt: skip
    signable = encode_typed_data(full_message=typed)
    assert digest == merkle.keccak256(
        b"\x19\x01" + signable.header + signable.body
    )  # Python == Solidity
    receipt = send(chain, fn, op)
    event = trading.events.SettlementApplied().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert event["settlementId"] == 9 and event["tradesRoot"] == tree.root
    assert list(event["moneyDeltas"]) == deltas and event["creditMoves"] == 1
    assert trading.functions.balanceOf(buyer.address).call() == -50
    assert token.functions.balanceOf(buyer.address, tid).call() == 1_500
    # every trade proves against the on-chain root (OZ MerkleProof, odd leaf count)
    for i, leaf in enumerate(leaves):
        assert trading.functions.verifyTrade(9, leaf, tree.proof(i)).call()
    assert not trading.functions.verifyTrade(9, b"\x01" * 32, tree.proof(0)).call()
    reverts(fn, op, "SettlementAlreadyApplied(9)")
    assert trading.functions.balanceOf(buyer.address).call() == -50  # replay changed nothing


def test_settlement_reverts(chain):
    trading = chain.contract("EnergyTrading")
    op, a, b = chain.duty("settlement"), chain.others[0].address, chain.others[1].address
    f = chain.settle
    reverts(f(1, B32, [a, b], [5, -4], []), op, "NotBalanced(1)")
    reverts(f(1, B32, [a, b], [5], []), op, "LengthMismatch")
    unapproved = trading.functions.settle(1, B32, [a, b], [5, -5], [], b"")
    reverts(unapproved, op, "SettlementNotApproved(0x0000000000000000000000000000000000000000)")
    bad = chain.approval(1, B32, [a, b], [5, -5], [])
    reverts(trading.functions.settle(1, B32, [a, b], [5], [], bad), op, "SettlementNotApproved")
    reverts(f(1, b"\x00" * 32, [a, b], [5, -5], []), op, "ZeroRoot")
    reverts(f(1, B32, [a, b], [5, -5], []), chain.others[0], "AccessControlUnauthorizedAccount")
    reverts(f(1, B32, [a, b], [5, -5], [(a, b, 1, 10)]), op, f"NotCustodial({a.lower()})")
    register_custodial(chain, chain.others[0], chain.others[1])
    reverts(f(1, B32, [a, b], [5, -5], [(a, b, 1, 10)]), op, "ERC1155InsufficientBalance")
    via_multisig(chain, "EnergyTrading", "pause")
    reverts(f(1, B32, [a, b], [5, -5], []), op, "EnforcedPause")


# --- MeterOracle -------------------------------------------------------------------------------


def _signed_readings(n: int):
    import coincurve

    out = []
    for i in range(n):
        key = (i + 1).to_bytes(32, "big")
        address = address_from_public_key(coincurve.PrivateKey(key).public_key.format(False))
        fields = SignedFields(f"MTR-{i}", 10 + i, H, 900, 250 + i, i, 10_000 + i, 5 * i, 0)
        out.append((fields, sign_reading(key, fields), address))
    return out


def _reading_tuple(f: SignedFields) -> tuple:
    return (f.serial, f.seq, f.interval_start, f.interval_seconds, f.import_wh, f.export_wh,
            f.register_import_wh, f.register_export_wh, f.status)  # fmt: skip


def test_oracle_verifies_signature_and_inclusion_like_python(chain):
    oracle = chain.contract("MeterOracle")
    op = chain.duty("anchoring")
    readings = _signed_readings(5)
    for fields, _sig, address in readings:
        receipt = send(chain, oracle.functions.registerMeter(meter_key(fields.serial), address), op)
        assert (
            oracle.events.MeterRegistered().process_receipt(receipt, errors=DISCARD)[0]["args"][
                "device"
            ]
            == address
        )
    leaves = [merkle.reading_leaf(reading_digest(f)) for f, _s, _a in readings]
    tree = merkle.build(leaves)
    receipt = send(chain, oracle.functions.anchorBatch(H, 1, tree.root, 5), op)
    anchored = oracle.events.BatchAnchored().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert anchored["root"] == tree.root and anchored["leafCount"] == 5
    for i, (fields, sig, _address) in enumerate(readings):
        r = _reading_tuple(fields)
        assert oracle.functions.readingDigest(r).call() == reading_digest(fields)
        assert oracle.functions.verifyReading(H, 1, r, sig, tree.proof(i)).call() == [True, True]
    fields, sig, _ = readings[1]
    tampered = (*_reading_tuple(fields)[:4], fields.import_wh + 1, *_reading_tuple(fields)[5:])
    assert oracle.functions.verifyReading(H, 1, tampered, sig, tree.proof(1)).call() == [
        False, False,
    ]  # fmt: skip
    wrong_version = oracle.functions.verifyReading(H, 2, _reading_tuple(fields), sig, tree.proof(1))
    assert wrong_version.call() == [True, False]
    unknown = SignedFields("NOT-REGISTERED", 1, H, 900, 1, 0)
    assert oracle.functions.verifyReading(
        H, 1, _reading_tuple(unknown), sign_reading(b"\x07" * 32, unknown), []
    ).call() == [False, False]


def test_oracle_reverts(chain):
    oracle = chain.contract("MeterOracle")
    op = chain.duty("anchoring")
    send(chain, oracle.functions.anchorBatch(H, 1, B32, 3), op)
    reverts(oracle.functions.anchorBatch(H, 1, b"\x12" * 32, 3), op, "AlreadyAnchored")
    reverts(oracle.functions.anchorBatch(H, 2, b"\x00" * 32, 3), op, "ZeroRoot")
    reverts(oracle.functions.anchorBatch(H, 2, B32, 0), op, "EmptyBatch")
    reverts(oracle.functions.registerMeter(B32, "0x" + "00" * 20), op, "ZeroAddress")
    reverts(oracle.functions.anchorBatch(H, 3, B32, 1), chain.others[0],
            "AccessControlUnauthorizedAccount")  # fmt: skip
    reverts(oracle.functions.registerMeter(B32, chain.others[0].address), chain.others[0],
            "AccessControlUnauthorizedAccount")  # fmt: skip
    via_multisig(chain, "MeterOracle", "pause")
    reverts(oracle.functions.anchorBatch(H, 4, B32, 1), op, "EnforcedPause")
    batch = oracle.functions.batchId(H, 1).call()
    assert batch == merkle.keccak256(abi_encode(["uint64", "uint32"], [H, 1]))


# --- GridBalancer ------------------------------------------------------------------------------


def test_grid_balancer_records_and_refuses_replays(chain):
    grid = chain.contract("GridBalancer")
    op, m = chain.duty("grid"), chain.others[0].address
    receipt = send(chain, grid.functions.recordEvent(5, 1, H, H + 3600, 20_000, B32), op)
    assert (
        grid.events.DrEventRecorded().process_receipt(receipt, errors=DISCARD)[0]["args"]["eventId"]
        == 5
    )
    reverts(grid.functions.recordEvent(5, 1, H, H + 3600, 1, B32), op, "StaleModification(1, 1)")
    send(chain, grid.functions.recordEvent(5, 2, H, H + 7200, 15_000, B32), op)
    assert grid.functions.drEvents(5).call()[2] == 2
    reverts(grid.functions.recordEvent(6, 1, H, H, 1, B32), op, "InvalidWindow")
    reverts(grid.functions.recordEvent(6, 1, H, H + 1, 2**129, B32), op, "ValueTooLarge")
    send(chain, grid.functions.recordCommitment(5, m, 3_000), op)
    assert grid.functions.commitmentW(5, m).call() == 3_000
    reverts(grid.functions.recordCommitment(99, m, 1), op, "UnknownEvent(99)")
    reverts(grid.functions.recordCommitment(5, "0x" + "00" * 20, 1), op, "ZeroAddress")
    receipt = send(chain, grid.functions.recordPerformance(5, m, 4_000, 1_500, 2_500), op)
    perf = grid.events.PerformanceRecorded().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert perf["deliveredWh"] == 2_500
    reverts(grid.functions.recordPerformance(5, m, 1, 1, 0), op, "AlreadyRecorded")
    reverts(grid.functions.recordPerformance(98, m, 1, 1, 0), op, "UnknownEvent(98)")
    send(chain, grid.functions.recordStability(H, 9_250, B32), op)
    assert grid.functions.stability(H).call()[0] == 9_250
    reverts(grid.functions.recordStability(H, 9_000, B32), op, "AlreadyRecorded")
    reverts(grid.functions.recordStability(H + 900, 10_001, B32), op, "ScoreOutOfRange")
    reverts(grid.functions.recordStability(H + 900, 1, B32), chain.others[0],
            "AccessControlUnauthorizedAccount")  # fmt: skip


# --- RenewableIncentive ------------------------------------------------------------------------


def test_rewards_rules_awards_and_claims(chain):
    inc = chain.contract("RenewableIncentive")
    op, alice, bob = chain.duty("rewards"), chain.others[0], chain.others[1]
    reverts(inc.functions.setRule(1, 10**18, True, B32), op, "AccessControlUnauthorizedAccount")
    via_multisig(chain, "RenewableIncentive", "setRule", 1, 10**18, True, B32)  # 1 ESR per kWh
    receipt = send(chain, inc.functions.award(100, alice.address, 1, 2_500), op)
    accrued = inc.events.RewardAccrued().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert accrued["amount"] == 25 * 10**17
    reverts(inc.functions.award(100, alice.address, 1, 2_500), op, "AlreadyAwarded(100)")
    reverts(inc.functions.award(101, alice.address, 2, 1), op, "RuleInactive(2)")
    reverts(
        inc.functions.award(102, alice.address, 1, 1), alice, "AccessControlUnauthorizedAccount"
    )
    reverts(inc.functions.award(103, "0x" + "00" * 20, 1, 1), op, "ZeroAddress")
    send(chain, inc.functions.claim(), alice)
    assert inc.functions.balanceOf(alice.address).call() == 25 * 10**17
    reverts(inc.functions.claim(), alice, "NothingToClaim")
    send(chain, inc.functions.award(104, bob.address, 1, 1_000), op)
    send(chain, inc.functions.claimFor(bob.address), op)
    assert inc.functions.balanceOf(bob.address).call() == 10**18
    reverts(inc.functions.claimFor(bob.address), alice, "AccessControlUnauthorizedAccount")


def test_remaining_reverts(chain):
    op, a, b = chain.operator, chain.others[0].address, chain.others[1].address
    art = artifact("StaffMultisig")
    factory = chain.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    for signers in ([a, a], [a, "0x" + "00" * 20]):
        with pytest.raises(ContractLogicError) as info:
            factory.constructor(signers, 2).transact({"from": op.address})
        assert decode_revert(info.value.data) == "InvalidSigners()"
    token = chain.contract("EnergyToken")
    custodian, recorder = chain.duty("certificates"), chain.duty("grid")
    reverts(token.functions.custodianTransferBatch([(a, b, 1, 0)]), custodian, "ZeroAmount")
    reverts(token.functions.custodianTransfer(a, b, 1, 0), custodian, "ZeroAmount")
    grid = chain.contract("GridBalancer")
    send(chain, grid.functions.recordEvent(1, 0, H, H + 900, 1, B32), recorder)
    reverts(grid.functions.recordPerformance(1, a, 2**80, 0, 0), recorder, "ValueTooLarge")
    for name, fn, sender in (
        ("GridBalancer", grid.functions.recordStability(H, 1, B32), recorder),
        ("RenewableIncentive", chain.contract("RenewableIncentive").functions.award(1, a, 1, 1),
         chain.duty("rewards")),
    ):  # fmt: skip
        via_multisig(chain, name, "pause")
        reverts(fn, sender, "EnforcedPause")
