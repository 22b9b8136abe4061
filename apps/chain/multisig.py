"""Staff multisig operations: build a proposal for a privileged call, and — on the local development
chain only, where the staff signer keys are the public test mnemonic — carry it out.

On a public network the signer keys live with the staff (hardware wallets); the back-office only
prepares the proposal (target + calldata) for them to `propose` / `approve` / `execute`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from apps.audit.events import AuditEvent
from apps.audit.services import audit_log_write
from apps.chain import client
from apps.core.exceptions import ApplicationError
from apps.core.types import Actor

TOKEN_DECIMALS = 18  # RenewableIncentive is an OpenZeppelin ERC-20 with 18 decimals


@dataclass(frozen=True, slots=True)
class Proposal:
    multisig: str
    target: str
    contract: str
    function: str
    args: tuple
    data: str  # 0x calldata for StaffMultisig.propose(target, 0, data)
    executed_tx: str = ""


def multisig_proposal(*, contract: str, function: str, args: tuple) -> Proposal:
    c = client.contract(contract)
    data = c.functions[function](*args)._encode_transaction_data()
    return Proposal(
        multisig=client.deployed_address("StaffMultisig"),
        target=c.address,
        contract=contract,
        function=function,
        args=args,
        data=data,
    )


@transaction.atomic
def multisig_call(*, contract: str, function: str, args: tuple, actor: Actor = None) -> Proposal:
    """Prepare the proposal; on the local network also execute it with the development signers."""
    from apps.chain.deploy import multisig_execute

    proposal = multisig_proposal(contract=contract, function=function, args=args)
    executed = ""
    if client.network_config().is_local:
        client.check_chain_id()
        signers, threshold = client.multisig_signers()
        local = {client.mnemonic_account(i).address: client.mnemonic_account(i) for i in range(10)}
        keys = [local[s] for s in signers if s in local][:threshold]
        if len(keys) < threshold:
            raise ApplicationError("The local signer keys do not reach the multisig threshold.")
        receipt = multisig_execute(
            client.web3(),
            proposal.multisig,
            keys,
            target=proposal.target,
            data=bytes.fromhex(proposal.data[2:]),
        )
        executed = "0x" + bytes(receipt["transactionHash"]).hex()
    audit_log_write(
        event=AuditEvent.MULTISIG_CALL_EXECUTED,
        actor=actor,
        target_type="chain.contract",
        target_id=contract,
        details={"function": function, "args": [str(a) for a in args], "executed_tx": executed},
    )
    return Proposal(
        multisig=proposal.multisig,
        target=proposal.target,
        contract=contract,
        function=function,
        args=args,
        data=proposal.data,
        executed_tx=executed,
    )
