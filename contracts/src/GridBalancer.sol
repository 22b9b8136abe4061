// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {GuardedPausable} from "./Guarded.sol";

/// @title GridBalancer — demand-response events, commitments, measured performance and stability.
/// @notice Events follow OpenADR 2.0b: an id and a modification number that must grow when the
/// event is re-recorded. Performance is measured against a baseline from metered data (off chain)
/// and recorded once per member and event. Stability scores (basis points) once per interval.
contract GridBalancer is GuardedPausable {
    bytes32 public constant RECORDER_ROLE = keccak256("RECORDER_ROLE");

    struct DrEvent {
        uint64 start;
        uint64 end;
        uint32 modification;
        bool exists;
        uint128 targetW;
        bytes32 signalHash;
    }

    struct Performance {
        uint80 baselineWh;
        uint80 actualWh;
        uint80 deliveredWh;
        bool recorded;
    }

    struct Stability {
        uint16 scoreBp;
        bool recorded;
        bytes32 dataHash;
    }

    mapping(uint256 => DrEvent) public drEvents;
    mapping(uint256 => mapping(address => uint256)) public commitmentW;
    mapping(uint256 => mapping(address => Performance)) public performance;
    mapping(uint64 => Stability) public stability;

    event DrEventRecorded(
        uint256 indexed eventId, uint32 modification, uint64 start, uint64 end, uint256 targetW, bytes32 signalHash
    );
    event CommitmentRecorded(uint256 indexed eventId, address indexed member, uint256 committedW);
    event PerformanceRecorded(
        uint256 indexed eventId, address indexed member, uint256 baselineWh, uint256 actualWh, uint256 deliveredWh
    );
    event StabilityRecorded(uint64 indexed intervalStart, uint16 scoreBp, bytes32 dataHash);

    error InvalidWindow();
    error StaleModification(uint32 current, uint32 given);
    error UnknownEvent(uint256 eventId);
    error AlreadyRecorded();
    error ScoreOutOfRange(uint16 scoreBp);
    error ValueTooLarge();
    error ZeroAddress();

    constructor(address admin, address recorder) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(RECORDER_ROLE, recorder);
    }

    function recordEvent(
        uint256 eventId,
        uint32 modification,
        uint64 start,
        uint64 end,
        uint256 targetW,
        bytes32 signalHash
    ) external onlyRole(RECORDER_ROLE) whenNotPaused {
        if (end <= start) revert InvalidWindow();
        if (targetW > type(uint128).max) revert ValueTooLarge();
        DrEvent storage e = drEvents[eventId];
        if (e.exists && modification <= e.modification) revert StaleModification(e.modification, modification);
        drEvents[eventId] = DrEvent(start, end, modification, true, uint128(targetW), signalHash);
        emit DrEventRecorded(eventId, modification, start, end, targetW, signalHash);
    }

    function recordCommitment(uint256 eventId, address member, uint256 committedW)
        external
        onlyRole(RECORDER_ROLE)
        whenNotPaused
    {
        if (!drEvents[eventId].exists) revert UnknownEvent(eventId);
        if (member == address(0)) revert ZeroAddress();
        commitmentW[eventId][member] = committedW;
        emit CommitmentRecorded(eventId, member, committedW);
    }

    function recordPerformance(
        uint256 eventId,
        address member,
        uint256 baselineWh,
        uint256 actualWh,
        uint256 deliveredWh
    ) external onlyRole(RECORDER_ROLE) whenNotPaused {
        if (!drEvents[eventId].exists) revert UnknownEvent(eventId);
        if (member == address(0)) revert ZeroAddress();
        if (baselineWh > type(uint80).max || actualWh > type(uint80).max || deliveredWh > type(uint80).max) {
            revert ValueTooLarge();
        }
        Performance storage p = performance[eventId][member];
        if (p.recorded) revert AlreadyRecorded();
        performance[eventId][member] = Performance(uint80(baselineWh), uint80(actualWh), uint80(deliveredWh), true);
        emit PerformanceRecorded(eventId, member, baselineWh, actualWh, deliveredWh);
    }

    function recordStability(uint64 intervalStart, uint16 scoreBp, bytes32 dataHash)
        external
        onlyRole(RECORDER_ROLE)
        whenNotPaused
    {
        if (scoreBp > 10_000) revert ScoreOutOfRange(scoreBp);
        if (stability[intervalStart].recorded) revert AlreadyRecorded();
        stability[intervalStart] = Stability(scoreBp, true, dataHash);
        emit StabilityRecorded(intervalStart, scoreBp, dataHash);
    }
}
