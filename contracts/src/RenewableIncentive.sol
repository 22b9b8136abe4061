// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// @title RenewableIncentive — reward rules, accrued rewards and reward-token claims.
/// @notice Staff (the multisig, RULE_ADMIN_ROLE) set rules: a rate in reward-token base units per
/// kWh of the rule's basis (local renewable consumption, demand-response delivery). The operator
/// accrues awards (each award id once); members claim their accrued rewards as ERC-20 tokens
/// themselves, or the operator pays custodial members out with claimFor.
contract RenewableIncentive is ERC20, AccessControl, Pausable {
    bytes32 public constant RULE_ADMIN_ROLE = keccak256("RULE_ADMIN_ROLE");
    bytes32 public constant REWARDER_ROLE = keccak256("REWARDER_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    struct Rule {
        uint256 ratePerKWh;
        bool active;
        bytes32 termsHash;
    }

    mapping(uint256 => Rule) public rules;
    mapping(uint256 => bool) public awarded;
    mapping(address => uint256) public accrued;

    event RuleSet(uint256 indexed ruleId, uint256 ratePerKWh, bool active, bytes32 termsHash);
    event RewardAccrued(uint256 indexed awardId, address indexed member, uint256 indexed ruleId, uint256 basisWh, uint256 amount);
    event RewardClaimed(address indexed member, uint256 amount);

    error RuleInactive(uint256 ruleId);
    error AlreadyAwarded(uint256 awardId);
    error NothingToClaim();
    error ZeroAddress();

    constructor(address admin, address operator) ERC20("EnergySphere Reward", "ESR") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(RULE_ADMIN_ROLE, admin);
        _grantRole(REWARDER_ROLE, operator);
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
        awarded[awardId] = true;
        uint256 amount = (basisWh * rule.ratePerKWh) / 1000;
        accrued[member] += amount;
        emit RewardAccrued(awardId, member, ruleId, basisWh, amount);
    }

    function claim() external {
        _claim(_msgSender());
    }

    function claimFor(address member) external onlyRole(REWARDER_ROLE) {
        _claim(member);
    }

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
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
