"""Least privilege against anvil: what a thief of one duty key can and cannot do.

Each attack of issue 16 is replayed with the stolen key alone and must revert with a named error:
the settlement key cannot mint, award, move a member's own wallet or rotate a meter key; the
minting and rewards keys are bounded by the per-period caps the multisig set; a member's wallet
moves only with its owner's signature; meter keys rotate and multisig signers change only through
the multisig; a guardian pauses but cannot unpause.
"""

from __future__ import annotations

import pytest
from eth_account import Account
from web3.logs import DISCARD

from apps.chain import merkle
from apps.chain.deploy import role
from apps.chain.intents import meter_key, token_id
from apps.meters.signing import SignedFields, address_from_public_key, reading_digest, sign_reading

from .test_contracts import B32, H, register_custodial, reverts, send, via_multisig

pytestmark = pytest.mark.chain

UNAUTHORIZED = "AccessControlUnauthorizedAccount"


def _wallet_with_tokens(chain, amount: int = 10_000, asset: int = 9):
    """A member's own wallet (not custodial; the cooperative does not hold its key)."""
    wallet = chain.others[2]
    tid = token_id(asset, H)
    token = chain.contract("EnergyToken")
    send(chain, token.functions.mint(wallet.address, tid, amount, b"\x51" * 32), chain.duty("mint"))
    return wallet, tid


def _evm_later(chain, seconds: int) -> None:
    chain.node.rpc("evm_increaseTime", [seconds])
    chain.node.rpc("evm_mine")


# --- a stolen settlement key -------------------------------------------------------------------


def test_stolen_settlement_key_cannot_mint_award_move_wallets_or_rotate_meter_keys(chain):
    thief = chain.duty("settlement")
    token = chain.contract("EnergyToken")
    inc, oracle = chain.contract("RenewableIncentive"), chain.contract("MeterOracle")
    wallet, tid = _wallet_with_tokens(chain)
    custodial = chain.others[3]
    register_custodial(chain, custodial)
    # mint 10^30 Wh of a token id the project uses
    reverts(token.functions.mint(thief.address, tid, 10**30, b"\x52" * 32), thief, UNAUTHORIZED)
    # award(basisWh=10^30) and pay it out
    via_multisig(chain, "RenewableIncentive", "setRule", 1, 10**18, True, B32)
    reverts(inc.functions.award(1, thief.address, 1, 10**30), thief, UNAUTHORIZED)
    reverts(inc.functions.claimFor(thief.address), thief, UNAUTHORIZED)
    # move or burn the wallet's tokens: directly, or hidden in a settlement's credit moves
    reverts(token.functions.custodianTransfer(wallet.address, custodial.address, tid, 7_000),
            thief, UNAUTHORIZED)  # fmt: skip
    reverts(token.functions.custodianTransferBatch([(wallet.address, custodial.address, tid, 1)]),
            thief, UNAUTHORIZED)  # fmt: skip
    reverts(token.functions.cancel(wallet.address, tid, 7_000, B32), thief, UNAUTHORIZED)
    reverts(token.functions.claimFor(wallet.address, tid, 7_000, B32), thief, UNAUTHORIZED)
    moves = [(wallet.address, custodial.address, tid, 7_000)]
    reverts(chain.settle(1, B32, [], [], moves), thief,
            f"NotCustodial({wallet.address.lower()})")  # fmt: skip
    # custodial balances cannot be moved out of custody to the thief either
    send(chain, token.functions.mint(custodial.address, tid, 100, b"\x53" * 32), chain.duty("mint"))
    out_of_custody = [(custodial.address, thief.address, tid, 100)]
    reverts(chain.settle(2, B32, [], [], out_of_custody), thief,
            f"NotCustodial({thief.address.lower()})")  # fmt: skip
    assert token.functions.balanceOf(wallet.address, tid).call() == 10_000
    # re-point a meter to a new device key
    serial_key = meter_key("MTR-STOLEN")
    send(chain, oracle.functions.registerMeter(serial_key, chain.others[4].address),
         chain.duty("anchoring"))  # fmt: skip
    reverts(oracle.functions.registerMeter(serial_key, thief.address), thief, UNAUTHORIZED)
    reverts(oracle.functions.rotateMeterKey(serial_key, thief.address, H), thief, UNAUTHORIZED)
    assert oracle.functions.meterAddress(serial_key).call() == chain.others[4].address


def test_stolen_settlement_key_alone_cannot_rewrite_balances(chain):
    """EnergyTrading.settle applies a batch only with the settlement-approval duty's EIP-712
    approval of exactly these members, deltas, moves and root."""
    thief, approver = chain.duty("settlement"), chain.duty("settlement_approval")
    trading = chain.contract("EnergyTrading")
    accomplice, victim = chain.others[4].address, chain.others[5].address
    members, deltas = [accomplice, victim], [10**9, -(10**9)]
    settle = trading.functions.settle
    # no approval, its own signature, or an approval of another batch: all refused
    reverts(settle(1, B32, members, deltas, [], b""), thief, "SettlementNotApproved")
    own = chain.approval(1, B32, members, deltas, [], signer=thief)
    reverts(settle(1, B32, members, deltas, [], own), thief,
            f"SettlementNotApproved({thief.address.lower()})")  # fmt: skip
    honest = chain.approval(1, B32, members, [1, -1], [])
    reverts(settle(1, B32, members, deltas, [], honest), thief, "SettlementNotApproved")
    reverts(settle(1, B32, members[::-1], [1, -1], [], honest), thief, "SettlementNotApproved")
    reverts(settle(2, B32, members, [1, -1], [], honest), thief, "SettlementNotApproved")
    assert trading.functions.balanceOf(victim).call() == 0
    # the approval key cannot send a batch itself (it holds no SETTLER_ROLE)
    reverts(settle(1, B32, members, [1, -1], [], honest), approver, UNAUTHORIZED)
    # the approved batch applies as approved
    send(chain, settle(1, B32, members, [1, -1], [], honest), thief)
    assert trading.functions.balanceOf(victim).call() == -1
    # even granted both roles, one key cannot approve its own batch
    via_multisig(chain, "EnergyTrading", "grantRole", role("APPROVER_ROLE"), thief.address)
    own = chain.approval(3, B32, members, deltas, [], signer=thief)
    reverts(settle(3, B32, members, deltas, [], own), thief, "SettlementNotApproved")
    # and no privileged role either
    reverts(trading.functions.grantRole(role("SETTLER_ROLE"), chain.others[5].address), thief,
            UNAUTHORIZED)  # fmt: skip
    reverts(trading.functions.pause(), thief, UNAUTHORIZED)


def test_stolen_custodian_key_cannot_take_a_wallet_or_declare_it_custodial(chain):
    thief = chain.duty("certificates")
    token = chain.contract("EnergyToken")
    wallet, tid = _wallet_with_tokens(chain)
    custodial = chain.others[3]
    register_custodial(chain, custodial)
    reverts(token.functions.custodianTransfer(wallet.address, custodial.address, tid, 7_000),
            thief, f"NotCustodial({wallet.address.lower()})")  # fmt: skip
    reverts(token.functions.claimFor(wallet.address, tid, 7_000, B32), thief, "NotCustodial")
    # a registration needs the account's own signature: the thief can only sign with other keys
    forged = thief.unsafe_sign_hash(token.functions.custodyDigest(wallet.address).call())
    reverts(token.functions.registerCustodial(wallet.address, forged.signature), thief,
            "InvalidCustodySignature")  # fmt: skip
    assert not token.functions.custodial(wallet.address).call()
    send(chain, token.functions.mint(custodial.address, tid, 500, b"\x54" * 32), chain.duty("mint"))
    reverts(token.functions.custodianTransfer(custodial.address, thief.address, tid, 500), thief,
            "NotCustodial")  # fmt: skip
    assert token.functions.balanceOf(wallet.address, tid).call() == 10_000


def test_stolen_minting_key_is_bounded_by_the_period_cap(chain):
    thief = chain.duty("mint")
    token = chain.contract("EnergyToken")
    tid = token_id(9, H)
    cap, used, headroom, period = token.functions.mintAllowance().call()
    assert cap > 0 and used == 0 and headroom == cap
    reverts(token.functions.mint(thief.address, tid, 10**30, b"\x61" * 32), thief,
            f"MintCapExceeded({cap}, 0, {10**30})")  # fmt: skip
    send(chain, token.functions.mint(thief.address, tid, cap - 10, b"\x62" * 32), thief)
    reverts(token.functions.mint(thief.address, tid, 11, b"\x63" * 32), thief,
            f"MintCapExceeded({cap}, {cap - 10}, 11)")  # fmt: skip
    assert token.functions.mintAllowance().call() == [cap, cap - 10, 10, period]
    # cancelling (burning) a member's own wallet is refused too
    wallet, wid = _wallet_with_tokens(chain, amount=10)
    reverts(token.functions.cancel(wallet.address, wid, 10, B32), thief, "NotCustodial")
    # only the multisig changes the cap; a new period starts with a fresh allowance
    reverts(token.functions.setMintCap(10**30, period), thief, UNAUTHORIZED)
    _evm_later(chain, period)
    send(chain, token.functions.mint(thief.address, tid, 11, b"\x63" * 32), thief)
    via_multisig(chain, "EnergyToken", "setMintCap", 5, period)
    reverts(token.functions.mint(thief.address, tid, 6, b"\x64" * 32), thief, "MintCapExceeded")


def test_stolen_rewards_key_is_bounded_by_the_award_cap(chain):
    thief = chain.duty("rewards")
    inc = chain.contract("RenewableIncentive")
    via_multisig(chain, "RenewableIncentive", "setRule", 1, 10**18, True, B32)  # 1 ESR per kWh
    cap, used, headroom, _period = inc.functions.awardAllowance().call()
    assert used == 0 and headroom == cap > 0
    reverts(inc.functions.award(1, thief.address, 1, 10**30), thief, "AwardCapExceeded")
    assert inc.functions.accrued(thief.address).call() == 0
    basis = cap // 10**15  # exactly the cap in ESR base units
    send(chain, inc.functions.award(2, thief.address, 1, basis), thief)
    reverts(inc.functions.award(3, thief.address, 1, 1), thief, "AwardCapExceeded")
    reverts(inc.functions.setAwardCap(10**40, 86_400), thief, UNAUTHORIZED)
    assert inc.functions.totalSupply().call() == 0


# --- custody without theft ---------------------------------------------------------------------


def _authorization(chain, signer, *, frm, to, tid, amount, valid_before, nonce):
    token = chain.contract("EnergyToken")
    return Account.sign_typed_data(
        signer.key,
        {"name": "EnergyToken", "version": "1", "chainId": chain.w3.eth.chain_id,
         "verifyingContract": token.address},
        {"TransferAuthorization": [
            {"name": "from", "type": "address"}, {"name": "to", "type": "address"},
            {"name": "id", "type": "uint256"}, {"name": "amountWh", "type": "uint256"},
            {"name": "validBefore", "type": "uint256"}, {"name": "nonce", "type": "bytes32"},
        ]},
        {"from": frm, "to": to, "id": tid, "amountWh": amount, "validBefore": valid_before,
         "nonce": nonce},
    ).signature  # fmt: skip


def test_a_linked_wallet_moves_only_with_its_owners_signature(chain):
    token = chain.contract("EnergyToken")
    wallet, tid = _wallet_with_tokens(chain)
    buyer = chain.others[3]
    relayer = chain.duty("certificates")  # anyone may relay a signed authorisation
    deadline = chain.w3.eth.get_block("latest")["timestamp"] + 3600
    nonce = b"\x71" * 32
    args = {"frm": wallet.address, "to": buyer.address, "tid": tid, "amount": 7_000,
            "valid_before": deadline, "nonce": nonce}  # fmt: skip
    forged = _authorization(chain, relayer, **args)
    fn = token.functions.transferWithAuthorization
    reverts(fn(wallet.address, buyer.address, tid, 7_000, deadline, nonce, forged), relayer,
            f"InvalidAuthorization({wallet.address.lower()})")  # fmt: skip
    signed = _authorization(chain, wallet, **args)
    # a changed amount does not match the owner's signature
    reverts(fn(wallet.address, buyer.address, tid, 7_001, deadline, nonce, signed), relayer,
            "InvalidAuthorization")  # fmt: skip
    send(chain, fn(wallet.address, buyer.address, tid, 7_000, deadline, nonce, signed), relayer)
    assert token.functions.balanceOf(buyer.address, tid).call() == 7_000
    reverts(fn(wallet.address, buyer.address, tid, 7_000, deadline, nonce, signed), relayer,
            "AuthorizationAlreadyUsed")  # fmt: skip
    _evm_later(chain, 7200)
    late = _authorization(chain, wallet, **{**args, "nonce": b"\x72" * 32})
    reverts(fn(wallet.address, buyer.address, tid, 1, deadline, b"\x72" * 32, late), relayer,
            "AuthorizationExpired")  # fmt: skip
    # the owner's own approval lets settlements move the wallet's credits (its consent on chain)
    register_custodial(chain, buyer)
    trading, settler = chain.contract("EnergyTrading"), chain.duty("settlement")
    moves = [(wallet.address, buyer.address, tid, 1_000)]
    reverts(chain.settle(5, B32, [], [], moves), settler, "NotCustodial")
    send(chain, token.functions.setApprovalForAll(trading.address, True), wallet)
    send(chain, chain.settle(5, B32, [], [], moves), settler)
    assert token.functions.balanceOf(wallet.address, tid).call() == 2_000


def test_members_withdraw_custodial_balances_to_their_linked_wallet(chain):
    token = chain.contract("EnergyToken")
    custodian = chain.duty("certificates")
    account, wallet, stranger = chain.others[3], chain.others[2], chain.others[5]
    register_custodial(chain, account)
    tid = token_id(4, H)
    send(chain, token.functions.mint(account.address, tid, 900, b"\x81" * 32), chain.duty("mint"))
    reverts(token.functions.withdraw(account.address, tid, 100), wallet, "NotCustodial")
    digest = token.functions.linkDigest(account.address, wallet.address).call()
    bad = custodian.unsafe_sign_hash(digest).signature
    reverts(token.functions.linkWallet(account.address, wallet.address, bad), custodian,
            "InvalidCustodySignature")  # fmt: skip
    good = account.unsafe_sign_hash(digest).signature
    receipt = send(chain, token.functions.linkWallet(account.address, wallet.address, good),
                   custodian)  # fmt: skip
    linked = token.events.WalletLinked().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (linked["account"], linked["wallet"]) == (account.address, wallet.address)
    reverts(token.functions.withdraw(account.address, tid, 100), stranger, UNAUTHORIZED)
    send(chain, token.functions.withdraw(account.address, tid, 600), wallet)
    send(chain, token.functions.withdraw(account.address, tid, 100), custodian)
    assert token.functions.balanceOf(wallet.address, tid).call() == 700
    assert token.functions.balanceOf(account.address, tid).call() == 200


# --- meter keys --------------------------------------------------------------------------------


def _reading(key: bytes, serial: str, interval_start: int, import_wh: int):
    fields = SignedFields(serial, 1, interval_start, 900, import_wh, 0)
    return fields, sign_reading(key, fields)


def _as_tuple(f: SignedFields) -> tuple:
    return (f.serial, f.seq, f.interval_start, f.interval_seconds, f.import_wh, f.export_wh,
            f.register_import_wh, f.register_export_wh, f.status)  # fmt: skip


def test_meter_keys_rotate_only_through_the_multisig_and_old_readings_stay_verifiable(chain):
    import coincurve

    oracle = chain.contract("MeterOracle")
    anchoring = chain.duty("anchoring")
    serial = "MTR-ROT"
    old_key, new_key = (b"\x01" * 32), (b"\x02" * 32)
    old_addr, new_addr = (
        address_from_public_key(coincurve.PrivateKey(k).public_key.format(False))
        for k in (old_key, new_key)
    )
    mk = meter_key(serial)
    send(chain, oracle.functions.registerMeter(mk, old_addr), anchoring)
    before, sig_before = _reading(old_key, serial, H, 250)
    # the anchoring key cannot re-point the meter (the forged 50 MWh reading of the issue)
    reverts(oracle.functions.registerMeter(mk, anchoring.address), anchoring,
            "MeterKeyExists")  # fmt: skip
    reverts(oracle.functions.rotateMeterKey(mk, anchoring.address, H + 900), anchoring,
            UNAUTHORIZED)  # fmt: skip
    forged, forged_sig = _reading(bytes(anchoring.key), serial, H + 900, 50_000_000)
    # the multisig rotates: the new key signs from H + 900 on; the rotation is an event
    receipt = via_multisig(chain, "MeterOracle", "rotateMeterKey", mk, new_addr, H + 900)
    rotated = oracle.events.MeterKeyRotated().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (rotated["previous"], rotated["device"], rotated["validFrom"]) == (
        old_addr, new_addr, H + 900,
    )  # fmt: skip
    after, sig_after = _reading(new_key, serial, H + 900, 300)
    leaves = [merkle.reading_leaf(reading_digest(f)) for f in (before, after, forged)]
    tree = merkle.build(leaves)
    send(chain, oracle.functions.anchorBatch(H, 1, tree.root, 3), anchoring)
    verify = oracle.functions.verifyReading
    assert verify(H, 1, _as_tuple(before), sig_before, tree.proof(0)).call() == [True, True]
    assert verify(H, 1, _as_tuple(after), sig_after, tree.proof(1)).call() == [True, True]
    assert verify(H, 1, _as_tuple(forged), forged_sig, tree.proof(2)).call() == [False, True]
    # a reading of the new period signed with the old key no longer verifies
    stale, stale_sig = _reading(old_key, serial, H + 900, 300)
    assert verify(H, 1, _as_tuple(stale), stale_sig, tree.proof(1)).call()[0] is False
    reverts(oracle.functions.setMeterKeyDelay(0), anchoring, UNAUTHORIZED)


def test_a_first_meter_key_waits_out_the_veto_window_and_the_multisig_can_veto_it(chain):
    oracle = chain.contract("MeterOracle")
    anchoring = chain.duty("anchoring")
    via_multisig(chain, "MeterOracle", "setMeterKeyDelay", 3600)
    mk = meter_key("MTR-NEW")
    receipt = send(chain, oracle.functions.registerMeter(mk, anchoring.address), anchoring)
    event = oracle.events.MeterRegistered().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert event["activeAt"] >= chain.w3.eth.get_block("latest")["timestamp"] + 3600 - 1
    assert oracle.functions.meterAddress(mk).call() == "0x" + "00" * 20  # not yet in force
    via_multisig(chain, "MeterOracle", "vetoMeterKey", mk, 0)
    _evm_later(chain, 3601)
    assert oracle.functions.meterAddress(mk).call() == "0x" + "00" * 20  # vetoed: never counts
    # after a veto a new proposal may be made; unvetoed it takes effect after the window
    send(chain, oracle.functions.registerMeter(mk, chain.others[4].address), anchoring)
    _evm_later(chain, 3601)
    assert oracle.functions.meterAddress(mk).call() == chain.others[4].address
    with pytest.raises(Exception):  # noqa: B017 - the window is closed: the veto call fails
        via_multisig(chain, "MeterOracle", "vetoMeterKey", mk, 1)


# --- multisig lifecycle and the guardian -------------------------------------------------------


def test_signers_and_threshold_change_only_through_the_multisig(chain):
    ms = chain.contract("StaffMultisig")
    s1, s2, s3 = chain.signers
    newcomer = chain.others[5]
    for fn in (ms.functions.addSigner(newcomer.address), ms.functions.removeSigner(s3.address),
               ms.functions.replaceSigner(s3.address, newcomer.address),
               ms.functions.changeThreshold(3)):  # fmt: skip
        reverts(fn, s1, "OnlyMultisig")
        reverts(fn, chain.operator, "OnlyMultisig")
    # replace signer 3 by the newcomer, then require 3 of 3
    via_multisig(chain, "StaffMultisig", "replaceSigner", s3.address, newcomer.address)
    assert not ms.functions.isSigner(s3.address).call()
    assert ms.functions.isSigner(newcomer.address).call()
    reverts(ms.functions.propose(ms.address, 0, b""), s3, "NotSigner")
    via_multisig(chain, "StaffMultisig", "changeThreshold", 3, signers=[s1, newcomer])
    assert ms.functions.threshold().call() == 3
    token = chain.contract("EnergyToken")
    data = token.functions.pause()._encode_transaction_data()
    proposal = ms.functions.proposalCount().call()
    send(chain, ms.functions.propose(token.address, 0, data), s1)
    send(chain, ms.functions.approve(proposal), s2)
    reverts(ms.functions.execute(proposal), s1, "NotEnoughApprovals(2, 3)")
    send(chain, ms.functions.approve(proposal), newcomer)
    assert ms.functions.approvalCount(proposal).call() == 3
    fourth = chain.others[4]
    via_multisig(chain, "StaffMultisig", "addSigner", fourth.address, signers=[s1, s2, newcomer])
    assert ms.functions.signerCount().call() == 4
    # a removed signer's approval stops counting
    via_multisig(chain, "StaffMultisig", "removeSigner", s2.address, signers=[s1, s2, newcomer])
    assert ms.functions.approvalCount(proposal).call() == 2
    reverts(ms.functions.execute(proposal), s1, "NotEnoughApprovals(2, 3)")
    # a threshold below two, or above the signer count, is refused
    for threshold in (1, 4):
        with pytest.raises(Exception):  # noqa: B017 - CallFailed(InvalidThreshold())
            via_multisig(chain, "StaffMultisig", "changeThreshold", threshold,
                         signers=[s1, newcomer, fourth])  # fmt: skip
    send(chain, ms.functions.approve(proposal), fourth)
    send(chain, ms.functions.execute(proposal), fourth)
    assert token.functions.paused().call()


def test_the_guardian_pauses_but_cannot_unpause(chain):
    guardian = chain.guardian
    for name in ("EnergyToken", "EnergyTrading", "MeterOracle", "GridBalancer",
                 "RenewableIncentive"):  # fmt: skip
        c = chain.contract(name)
        reverts(c.functions.pause(), chain.duty("settlement"), UNAUTHORIZED)
        send(chain, c.functions.pause(), guardian)
        assert c.functions.paused().call()
        reverts(c.functions.unpause(), guardian, UNAUTHORIZED)
        via_multisig(chain, name, "unpause")
        assert not c.functions.paused().call()
