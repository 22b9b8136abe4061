// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {GuardedPausable, PeriodCap, PeriodCaps} from "./Guarded.sol";

/// @title RenewableIncentive — reward rules, accrued rewards and reward-token claims.
/// @notice Staff (the multisig, RULE_ADMIN_ROLE) set rules: a rate in reward-token base units per
/// kWh of the rule's basis (local renewable consumption, demand-response delivery). The operator
/// accrues awards (each award id once); members claim their accrued rewards as ERC-20 tokens
/// themselves, or the rewards key pays custodial members out with claimFor. The rewards key
/// (REWARDER_ROLE) accrues at most the per-period award cap the multisig set (in reward-token base
/// units), so a stolen rewards key cannot issue unbounded ESR. A member who redeems rewards off
/// chain (a credit on their invoice) has that amount burned from their accrued rewards by the
/// rewards key with redeemFor, once per redemption id and within the redemption cap the multisig
/// set, so a stolen rewards key cannot burn more than the cap per period either.
contract RenewableIncentive is ERC20, GuardedPausable {
    bytes32 public constant RULE_ADMIN_ROLE = keccak256("RULE_ADMIN_ROLE");
    bytes32 public constant REWARDER_ROLE = keccak256("REWARDER_ROLE");

    struct Rule {
        uint256 ratePerKWh;
        bool active;
        bytes32 termsHash;
    }

    mapping(uint256 => Rule) public rules;
    mapping(uint256 => bool) public awarded;
    mapping(address => uint256) public accrued;
    mapping(uint256 => bool) public redeemed;
    PeriodCap internal _awardCap;
    PeriodCap internal _redeemCap;

    event RuleSet(uint256 indexed ruleId, uint256 ratePerKWh, bool active, bytes32 termsHash);
    event RewardAccrued(uint256 indexed awardId, address indexed member, uint256 indexed ruleId, uint256 basisWh, uint256 amount);
    event RewardClaimed(address indexed member, uint256 amount);
    event AwardCapSet(uint256 cap, uint64 periodSeconds);
    event RewardRedeemed(uint256 indexed redemptionId, address indexed member, uint256 amount);
    event RedeemCapSet(uint256 cap, uint64 periodSeconds);

    error RuleInactive(uint256 ruleId);
    error AlreadyAwarded(uint256 awardId);
    error NothingToClaim();
    error ZeroAddress();
    error AwardCapExceeded(uint256 cap, uint256 used, uint256 amount);
    error InvalidCap();
    error AlreadyRedeemed(uint256 redemptionId);
    error InsufficientAccrued(uint256 accrued, uint256 amount);
    error RedeemCapExceeded(uint256 cap, uint256 used, uint256 amount);

    constructor(address admin, address rewarder) ERC20("EnergySphere Reward", "ESR") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(RULE_ADMIN_ROLE, admin);
        _grantRole(REWARDER_ROLE, rewarder);
    }

    function setRule(uint256 ruleId, uint256 ratePerKWh, bool active, bytes32 termsHash)
        external
        onlyRole(RULE_ADMIN_ROLE)
    {
        rules[ruleId] = Rule(ratePerKWh, active, termsHash);
        emit RuleSet(ruleId, ratePerKWh, active, termsHash);
    }

    function award(uint256 awardId, address member, uint256 ruleId, uint256 basisWh)
        external
        onlyRole(REWARDER_ROLE)
        whenNotPaused
    {
        if (member == address(0)) revert ZeroAddress();
        if (awarded[awardId]) revert AlreadyAwarded(awardId);
        Rule storage rule = rules[ruleId];
        if (!rule.active) revert RuleInactive(ruleId);
        uint256 amount = (basisWh * rule.ratePerKWh) / 1000;
        if (!PeriodCaps.trySpend(_awardCap, amount)) {
            revert AwardCapExceeded(_awardCap.cap, PeriodCaps.usedNow(_awardCap), amount);
        }
        awarded[awardId] = true;
        accrued[member] += amount;
        emit RewardAccrued(awardId, member, ruleId, basisWh, amount);
    }

    /// @notice Staff (multisig) set the most reward-token units awards may accrue per period.
    function setAwardCap(uint256 cap, uint64 periodSeconds) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (!PeriodCaps.set(_awardCap, cap, periodSeconds)) revert InvalidCap();
        emit AwardCapSet(cap, periodSeconds);
    }

    /// @notice (cap, used this period, headroom, period length) of awards.
    function awardAllowance() external view returns (uint256 cap, uint256 used, uint256 headroom, uint64 periodSeconds) {
        cap = _awardCap.cap;
        used = PeriodCaps.usedNow(_awardCap);
        headroom = cap > used ? cap - used : 0;
        periodSeconds = _awardCap.periodSeconds;
    }

    /// @notice Burn `amount` of a member's accrued rewards that they redeemed off chain for a
    /// credit on their invoice: once per redemption id, never more than they have accrued, within
    /// the redemption cap per period.
    function redeemFor(uint256 redemptionId, address member, uint256 amount)
        external
        onlyRole(REWARDER_ROLE)
        whenNotPaused
    {
        if (member == address(0)) revert ZeroAddress();
        if (redeemed[redemptionId]) revert AlreadyRedeemed(redemptionId);
        uint256 available = accrued[member];
        if (available < amount) revert InsufficientAccrued(available, amount);
        if (!PeriodCaps.trySpend(_redeemCap, amount)) {
            revert RedeemCapExceeded(_redeemCap.cap, PeriodCaps.usedNow(_redeemCap), amount);
        }
        redeemed[redemptionId] = true;
        accrued[member] = available - amount;
        emit RewardRedeemed(redemptionId, member, amount);
    }

    /// @notice Staff (multisig) set the most reward-token units redemptions may burn per period.
    function setRedeemCap(uint256 cap, uint64 periodSeconds) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (!PeriodCaps.set(_redeemCap, cap, periodSeconds)) revert InvalidCap();
        emit RedeemCapSet(cap, periodSeconds);
    }

    function claim() external {
        _claim(_msgSender());
    }

    function claimFor(address member) external onlyRole(REWARDER_ROLE) {
        _claim(member);
    }

    function _claim(address member) internal {
        uint256 amount = accrued[member];
        if (amount == 0) revert NothingToClaim();
        accrued[member] = 0;
        _mint(member, amount);
        emit RewardClaimed(member, amount);
    }

    function _update(address from, address to, uint256 value) internal override whenNotPaused {
        super._update(from, to, value);
    }
}
