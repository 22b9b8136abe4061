// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {CreditMove} from "./EnergyToken.sol";
import {GuardedPausable} from "./Guarded.sol";

interface IEnergyCredits {
    function custodianTransferBatch(CreditMove[] calldata moves) external;
}

/// @title EnergyTrading — applies settled batches of cleared trades.
/// @notice One call per settlement: records the Merkle root of its trades (leaves as in
/// apps/chain/merkle.py trade_leaf), applies the netted per-member money balances (integer minor
/// currency units; they must sum to zero — the community is budget-balanced, the cooperative's own
/// account included) and moves energy credits from sellers to buyers. A settlement id applies once.
/// @dev Gas: only netted balances are written (one storage slot per member, not per trade), so the
/// cost per trade falls with the number of trades per member. Credits move through
/// EnergyToken.custodianTransferBatch, which accepts only custodial holders (or wallets whose owner
/// approved this contract), so the settlement key cannot move a member's own wallet.
/// Second duty: every batch carries an EIP-712 `Settlement` approval signed by a key holding
/// APPROVER_ROLE (the settlement-approval duty, not the sender) over the settlement id, the trades
/// root and the hashes of the members, the money deltas and the credit moves. The settlement key
/// alone therefore cannot rewrite balances, move credits or record a root.
contract EnergyTrading is GuardedPausable, EIP712 {
    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");
    bytes32 public constant APPROVER_ROLE = keccak256("APPROVER_ROLE");
    bytes32 public constant SETTLEMENT_TYPEHASH = keccak256(
        "Settlement(uint256 settlementId,bytes32 tradesRoot,bytes32 membersHash,bytes32 deltasHash,bytes32 creditMovesHash)"
    );

    IEnergyCredits public immutable credits;
    mapping(uint256 => bytes32) public settlementRoot;
    /// Running money position of each account, integer minor currency units (paid off chain).
    mapping(address => int256) public balanceOf;

    event SettlementApplied(
        uint256 indexed settlementId, bytes32 tradesRoot, address[] members, int256[] moneyDeltas, uint256 creditMoves
    );

    error SettlementAlreadyApplied(uint256 settlementId);
    error ZeroRoot();
    error LengthMismatch();
    error NotBalanced(int256 sum);
    error SettlementNotApproved(address signer);

    constructor(address admin, address settler, address approver, address credits_) EIP712("EnergyTrading", "1") {
        credits = IEnergyCredits(credits_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(SETTLER_ROLE, settler);
        _grantRole(APPROVER_ROLE, approver);
    }

    function settle(
        uint256 settlementId,
        bytes32 tradesRoot,
        address[] calldata members,
        int256[] calldata moneyDeltas,
        CreditMove[] calldata creditMoves,
        bytes calldata approval
    ) external onlyRole(SETTLER_ROLE) whenNotPaused {
        if (settlementRoot[settlementId] != bytes32(0)) revert SettlementAlreadyApplied(settlementId);
        if (tradesRoot == bytes32(0)) revert ZeroRoot();
        _checkApproval(settlementId, tradesRoot, members, moneyDeltas, creditMoves, approval);
        settlementRoot[settlementId] = tradesRoot;
        _applyBalances(members, moneyDeltas);
        if (creditMoves.length != 0) credits.custodianTransferBatch(creditMoves);
        emit SettlementApplied(settlementId, tradesRoot, members, moneyDeltas, creditMoves.length);
    }

    /// @notice EIP-712 digest the approval duty signs for a batch.
    function settlementDigest(
        uint256 settlementId,
        bytes32 tradesRoot,
        address[] calldata members,
        int256[] calldata moneyDeltas,
        CreditMove[] calldata creditMoves
    ) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    SETTLEMENT_TYPEHASH,
                    settlementId,
                    tradesRoot,
                    keccak256(abi.encodePacked(members)),
                    keccak256(abi.encodePacked(moneyDeltas)),
                    keccak256(abi.encode(creditMoves))
                )
            )
        );
    }

    function _checkApproval(
        uint256 settlementId,
        bytes32 tradesRoot,
        address[] calldata members,
        int256[] calldata moneyDeltas,
        CreditMove[] calldata creditMoves,
        bytes calldata approval
    ) internal view {
        bytes32 digest = settlementDigest(settlementId, tradesRoot, members, moneyDeltas, creditMoves);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, approval);
        // the sender cannot approve its own batch, even if it were granted both roles
        if (err != ECDSA.RecoverError.NoError || !hasRole(APPROVER_ROLE, signer) || signer == _msgSender()) {
            revert SettlementNotApproved(signer);
        }
    }

    function _applyBalances(address[] calldata members, int256[] calldata moneyDeltas) internal {
        uint256 n = members.length;
        if (moneyDeltas.length != n) revert LengthMismatch();
        int256 sum;
        for (uint256 i = 0; i < n; ++i) {
            int256 d = moneyDeltas[i];
            balanceOf[members[i]] += d;
            sum += d;
        }
        if (sum != 0) revert NotBalanced(sum);
    }

    /// @notice Whether a trade leaf belongs to an applied settlement.
    function verifyTrade(uint256 settlementId, bytes32 leaf, bytes32[] calldata proof) external view returns (bool) {
        bytes32 root = settlementRoot[settlementId];
        return root != bytes32(0) && MerkleProof.verifyCalldata(proof, root, leaf);
    }
}
