// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title MeterOracle — meter registry, anchored reading batches, per-reading verification.
/// @notice The digest of a reading is exactly apps/meters/signing.py reading_digest:
/// keccak256(abi.encode(serial, seq, intervalStart, intervalSeconds, importWh, exportWh,
/// registerImportWh, registerExportWh, status)); the device signs it with personal_sign (EIP-191).
/// A batch leaf is the OpenZeppelin StandardMerkleTree leaf of [digest]:
/// keccak256(bytes.concat(keccak256(abi.encode(digest)))).
contract MeterOracle is AccessControl, Pausable {
    bytes32 public constant ORACLE_ROLE = keccak256("ORACLE_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    struct Reading {
        string serial;
        uint64 seq;
        uint64 intervalStart;
        uint32 intervalSeconds;
        uint64 importWh;
        uint64 exportWh;
        uint64 registerImportWh;
        uint64 registerExportWh;
        uint32 status;
    }

    struct Anchor {
        bytes32 root;
        uint64 intervalStart;
        uint32 version;
        uint32 leafCount;
        uint64 anchoredAt;
    }

    /// keccak256(bytes(serial)) => device address
    mapping(bytes32 => address) public meterAddress;
    /// batchId(intervalStart, version) => anchor
    mapping(bytes32 => Anchor) public anchors;

    event MeterRegistered(bytes32 indexed meterKey, address device);
    event BatchAnchored(
        bytes32 indexed batchId, uint64 indexed intervalStart, uint32 version, bytes32 root, uint32 leafCount
    );

    error ZeroAddress();
    error ZeroRoot();
    error EmptyBatch();
    error AlreadyAnchored(bytes32 batchId);

    constructor(address admin, address operator) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(ORACLE_ROLE, operator);
    }

    function batchId(uint64 intervalStart, uint32 version) public pure returns (bytes32) {
        return keccak256(abi.encode(intervalStart, version));
    }

    /// @notice Register (or rotate) a meter's device key.
    function registerMeter(bytes32 meterKey, address device) external onlyRole(ORACLE_ROLE) whenNotPaused {
        if (device == address(0)) revert ZeroAddress();
        meterAddress[meterKey] = device;
        emit MeterRegistered(meterKey, device);
    }

    function anchorBatch(uint64 intervalStart, uint32 version, bytes32 root, uint32 leafCount)
        external
        onlyRole(ORACLE_ROLE)
        whenNotPaused
    {
        if (root == bytes32(0)) revert ZeroRoot();
        if (leafCount == 0) revert EmptyBatch();
        bytes32 id = batchId(intervalStart, version);
        if (anchors[id].root != bytes32(0)) revert AlreadyAnchored(id);
        anchors[id] = Anchor(root, intervalStart, version, leafCount, uint64(block.timestamp));
        emit BatchAnchored(id, intervalStart, version, root, leafCount);
    }

    function readingDigest(Reading calldata r) public pure returns (bytes32) {
        return keccak256(
            abi.encode(
                r.serial,
                r.seq,
                r.intervalStart,
                r.intervalSeconds,
                r.importWh,
                r.exportWh,
                r.registerImportWh,
                r.registerExportWh,
                r.status
            )
        );
    }

    function readingLeaf(bytes32 digest) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(digest))));
    }

    /// @notice Verify one reading: its device signature and its inclusion in an anchored batch.
    function verifyReading(
        uint64 intervalStart,
        uint32 version,
        Reading calldata r,
        bytes calldata signature,
        bytes32[] calldata proof
    ) external view returns (bool signatureValid, bool included) {
        bytes32 digest = readingDigest(r);
        signatureValid = _signedByMeter(r.serial, digest, signature);
        included = isAnchored(intervalStart, version, readingLeaf(digest), proof);
    }

    /// @notice Whether a leaf belongs to the anchored batch (intervalStart, version).
    function isAnchored(uint64 intervalStart, uint32 version, bytes32 leaf, bytes32[] calldata proof)
        public
        view
        returns (bool)
    {
        bytes32 root = anchors[batchId(intervalStart, version)].root;
        return root != bytes32(0) && MerkleProof.verifyCalldata(proof, root, leaf);
    }

    function _signedByMeter(string calldata serial, bytes32 digest, bytes calldata signature)
        internal
        view
        returns (bool)
    {
        address device = meterAddress[keccak256(bytes(serial))];
        (address signer, ECDSA.RecoverError err,) =
            ECDSA.tryRecover(MessageHashUtils.toEthSignedMessageHash(digest), signature);
        return err == ECDSA.RecoverError.NoError && device != address(0) && signer == device;
    }

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }
}
