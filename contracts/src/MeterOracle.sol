// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {GuardedPausable} from "./Guarded.sol";

/// @title MeterOracle — meter registry, anchored reading batches, per-reading verification.
/// @notice The digest of a reading is exactly apps/meters/signing.py reading_digest:
/// keccak256(abi.encode(serial, seq, intervalStart, intervalSeconds, importWh, exportWh,
/// registerImportWh, registerExportWh, status)); the device signs it with personal_sign (EIP-191).
/// A batch leaf is the OpenZeppelin StandardMerkleTree leaf of [digest]:
/// keccak256(bytes.concat(keccak256(abi.encode(digest)))).
/// @dev Meter keys: the anchoring key (ORACLE_ROLE) may only propose the first key of a meter
/// that has none; it takes effect after `meterKeyDelay` seconds unless the multisig vetoes it in
/// that window. Rotating an existing key is for the multisig only (METER_ADMIN_ROLE); every key a
/// meter ever had stays in its history with the first interval it signs, so readings signed by an
/// old key keep verifying.
contract MeterOracle is GuardedPausable {
    bytes32 public constant ORACLE_ROLE = keccak256("ORACLE_ROLE");
    bytes32 public constant METER_ADMIN_ROLE = keccak256("METER_ADMIN_ROLE");
    /// @notice Anchors document digests (signed report content hashes, audit-log heads): held by
    /// the document-anchoring duty key only, granted at deployment, never by the oracle key.
    bytes32 public constant DOCUMENT_ROLE = keccak256("DOCUMENT_ROLE");

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

    struct MeterKey {
        address device;
        uint64 validFrom; // first interval start (Unix seconds) the key signs
        uint64 activeAt; // block time from which the key counts (end of the veto window)
        bool vetoed;
    }

    /// keccak256(bytes(serial)) => every device key of the meter, oldest first
    mapping(bytes32 => MeterKey[]) internal _meterKeys;
    /// seconds a key proposed by the anchoring key waits for a multisig veto
    uint64 public meterKeyDelay;
    /// batchId(intervalStart, version) => anchor
    mapping(bytes32 => Anchor) public anchors;
    /// kind => digest => block time it was anchored (0: never)
    mapping(bytes32 => mapping(bytes32 => uint64)) internal _documentAnchoredAt;

    event MeterRegistered(bytes32 indexed meterKey, address device, uint64 activeAt);
    event MeterKeyRotated(bytes32 indexed meterKey, address previous, address device, uint64 validFrom);
    event MeterKeyVetoed(bytes32 indexed meterKey, uint256 index, address device);
    event MeterKeyDelaySet(uint64 delaySeconds);
    event BatchAnchored(
        bytes32 indexed batchId, uint64 indexed intervalStart, uint32 version, bytes32 root, uint32 leafCount
    );

    event DocumentAnchored(bytes32 indexed kind, bytes32 indexed digest, uint64 anchoredAt);

    error ZeroAddress();
    error ZeroRoot();
    error EmptyBatch();
    error AlreadyAnchored(bytes32 batchId);
    error MeterKeyExists(bytes32 meterKey);
    error UnknownMeterKey(bytes32 meterKey, uint256 index);
    error VetoWindowClosed(bytes32 meterKey, uint256 index);
    error InvalidValidFrom(uint64 previous, uint64 given);
    error ZeroDocument();
    error DocumentAlreadyAnchored(bytes32 kind, bytes32 digest);

    constructor(address admin, address oracle, uint64 meterKeyDelay_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(METER_ADMIN_ROLE, admin);
        _grantRole(ORACLE_ROLE, oracle);
        meterKeyDelay = meterKeyDelay_;
    }

    function batchId(uint64 intervalStart, uint32 version) public pure returns (bytes32) {
        return keccak256(abi.encode(intervalStart, version));
    }

    /// @notice Propose the first device key of a meter (anchoring key). It counts after
    /// `meterKeyDelay` seconds unless the multisig vetoes it; a meter that has a key reverts
    /// MeterKeyExists (rotation is the multisig's).
    function registerMeter(bytes32 meterKey, address device) external onlyRole(ORACLE_ROLE) whenNotPaused {
        if (device == address(0)) revert ZeroAddress();
        MeterKey[] storage keys = _meterKeys[meterKey];
        for (uint256 i = 0; i < keys.length; ++i) {
            if (!keys[i].vetoed) revert MeterKeyExists(meterKey);
        }
        uint64 activeAt = uint64(block.timestamp) + meterKeyDelay;
        keys.push(MeterKey(device, 0, activeAt, false));
        emit MeterRegistered(meterKey, device, activeAt);
    }

    /// @notice Rotate (or set) a meter's key at once (multisig): the new key signs intervals from
    /// `validFrom` on; earlier readings keep verifying against the previous keys.
    function rotateMeterKey(bytes32 meterKey, address device, uint64 validFrom)
        external
        onlyRole(METER_ADMIN_ROLE)
    {
        if (device == address(0)) revert ZeroAddress();
        MeterKey[] storage keys = _meterKeys[meterKey];
        address previous;
        for (uint256 i = keys.length; i > 0; --i) {
            MeterKey storage k = keys[i - 1];
            if (k.vetoed) continue;
            if (validFrom <= k.validFrom) revert InvalidValidFrom(k.validFrom, validFrom);
            previous = k.device;
            break;
        }
        keys.push(MeterKey(device, validFrom, uint64(block.timestamp), false));
        emit MeterKeyRotated(meterKey, previous, device, validFrom);
    }

    /// @notice Veto a key proposed by the anchoring key while its window is open (multisig).
    function vetoMeterKey(bytes32 meterKey, uint256 index) external onlyRole(METER_ADMIN_ROLE) {
        if (index >= _meterKeys[meterKey].length) revert UnknownMeterKey(meterKey, index);
        MeterKey storage k = _meterKeys[meterKey][index];
        if (k.vetoed || k.activeAt <= block.timestamp) revert VetoWindowClosed(meterKey, index);
        k.vetoed = true;
        emit MeterKeyVetoed(meterKey, index, k.device);
    }

    function setMeterKeyDelay(uint64 delaySeconds) external onlyRole(DEFAULT_ADMIN_ROLE) {
        meterKeyDelay = delaySeconds;
        emit MeterKeyDelaySet(delaySeconds);
    }

    function meterKeyCount(bytes32 meterKey) external view returns (uint256) {
        return _meterKeys[meterKey].length;
    }

    function meterKeyAt(bytes32 meterKey, uint256 index) external view returns (MeterKey memory) {
        return _meterKeys[meterKey][index];
    }

    /// @notice The key that signs readings of `intervalStart` now (zero address if none).
    function deviceFor(bytes32 meterKey, uint64 intervalStart) public view returns (address) {
        MeterKey[] storage keys = _meterKeys[meterKey];
        for (uint256 i = keys.length; i > 0; --i) {
            MeterKey storage k = keys[i - 1];
            if (k.vetoed || k.activeAt > block.timestamp) continue;
            if (k.validFrom <= intervalStart) return k.device;
        }
        return address(0);
    }

    /// @notice The meter's current key (the newest one in force).
    function meterAddress(bytes32 meterKey) external view returns (address) {
        return deviceFor(meterKey, type(uint64).max);
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

    /// @notice Anchor a document digest under a kind (e.g. "compliance_report", "audit_head" as
    /// right-padded ASCII): the first anchor of a (kind, digest) pair stands; a second reverts.
    function anchorDocument(bytes32 kind, bytes32 digest) external onlyRole(DOCUMENT_ROLE) whenNotPaused {
        if (kind == bytes32(0) || digest == bytes32(0)) revert ZeroDocument();
        if (_documentAnchoredAt[kind][digest] != 0) revert DocumentAlreadyAnchored(kind, digest);
        uint64 at = uint64(block.timestamp);
        _documentAnchoredAt[kind][digest] = at;
        emit DocumentAnchored(kind, digest, at);
    }

    /// @notice Block time at which (kind, digest) was anchored; 0 when it never was.
    function documentAnchoredAt(bytes32 kind, bytes32 digest) external view returns (uint64) {
        return _documentAnchoredAt[kind][digest];
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
        signatureValid = _signedByMeter(r.serial, r.intervalStart, digest, signature);
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

    function _signedByMeter(string calldata serial, uint64 intervalStart, bytes32 digest, bytes calldata signature)
        internal
        view
        returns (bool)
    {
        address device = deviceFor(keccak256(bytes(serial)), intervalStart);
        (address signer, ECDSA.RecoverError err,) =
            ECDSA.tryRecover(MessageHashUtils.toEthSignedMessageHash(digest), signature);
        return err == ECDSA.RecoverError.NoError && device != address(0) && signer == device;
    }
}
