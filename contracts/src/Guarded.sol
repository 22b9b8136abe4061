// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// @title GuardedPausable — pausing shared by the EnergySphere contracts.
/// @notice The staff multisig holds PAUSER_ROLE (pause and unpause). A guardian (GUARDIAN_ROLE,
/// an on-call staff key) may pause but never unpause: stopping is cheap to allow, resuming needs
/// M-of-N staff approvals.
abstract contract GuardedPausable is AccessControl, Pausable {
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");

    function pause() external {
        if (!hasRole(PAUSER_ROLE, _msgSender()) && !hasRole(GUARDIAN_ROLE, _msgSender())) {
            revert AccessControlUnauthorizedAccount(_msgSender(), GUARDIAN_ROLE);
        }
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }
}

/// @notice Per-period issuance cap: at most `cap` units per window of `periodSeconds` (UTC-aligned
/// windows of block time). The multisig sets the cap; the duty key spends it.
struct PeriodCap {
    uint128 cap;
    uint64 periodSeconds;
    uint64 periodIndex;
    uint256 used;
}

library PeriodCaps {
    /// Set the cap; false (nothing changed) for a zero period or a cap above 2^128 - 1.
    function set(PeriodCap storage c, uint256 cap, uint64 periodSeconds) internal returns (bool) {
        if (periodSeconds == 0 || cap > type(uint128).max) return false;
        c.cap = uint128(cap);
        c.periodSeconds = periodSeconds;
        return true;
    }

    /// Units used in the current period (0 once a new period started).
    function usedNow(PeriodCap storage c) internal view returns (uint256) {
        if (c.periodSeconds == 0) return 0;
        return uint64(block.timestamp / c.periodSeconds) == c.periodIndex ? c.used : 0;
    }

    /// Spend `amount` of the current period's cap; returns false when it would exceed the cap.
    function trySpend(PeriodCap storage c, uint256 amount) internal returns (bool) {
        if (c.periodSeconds == 0) return false;
        uint64 index = uint64(block.timestamp / c.periodSeconds);
        uint256 used = index == c.periodIndex ? c.used : 0;
        if (used + amount > c.cap) return false;
        c.periodIndex = index;
        c.used = used + amount;
        return true;
    }
}
