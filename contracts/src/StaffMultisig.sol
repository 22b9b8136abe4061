// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title StaffMultisig — M-of-N approvals of cooperative staff.
/// @notice Holds the privileged roles (admin, pauser, rule admin) of the five EnergySphere
/// contracts. Any signer proposes a call (and approves it by proposing); it runs only once at
/// least `threshold` distinct signers approved it, and only once.
contract StaffMultisig {
    struct Proposal {
        address target;
        uint256 value;
        bytes data;
        bool executed;
        uint32 approvals;
    }

    address[] public signers;
    mapping(address => bool) public isSigner;
    uint256 public immutable threshold;
    Proposal[] public proposals;
    mapping(uint256 => mapping(address => bool)) public approved;

    event Proposed(uint256 indexed id, address indexed proposer, address target, uint256 value, bytes data);
    event Approved(uint256 indexed id, address indexed signer);
    event Revoked(uint256 indexed id, address indexed signer);
    event Executed(uint256 indexed id);

    error NotSigner();
    error InvalidSigners();
    error InvalidThreshold();
    error UnknownProposal(uint256 id);
    error AlreadyApproved(uint256 id);
    error NotApproved(uint256 id);
    error AlreadyExecuted(uint256 id);
    error NotEnoughApprovals(uint256 have, uint256 need);
    error CallFailed(bytes reason);

    modifier onlySigner() {
        if (!isSigner[msg.sender]) revert NotSigner();
        _;
    }

    constructor(address[] memory signers_, uint256 threshold_) {
        // A multisig needs at least two approvals: one staff key alone must never be enough.
        if (threshold_ < 2 || threshold_ > signers_.length) revert InvalidThreshold();
        for (uint256 i = 0; i < signers_.length; ++i) {
            address s = signers_[i];
            if (s == address(0) || isSigner[s]) revert InvalidSigners();
            isSigner[s] = true;
        }
        signers = signers_;
        threshold = threshold_;
    }

    receive() external payable {}

    function signerCount() external view returns (uint256) {
        return signers.length;
    }

    function proposalCount() external view returns (uint256) {
        return proposals.length;
    }

    function propose(address target, uint256 value, bytes calldata data) external onlySigner returns (uint256 id) {
        id = proposals.length;
        proposals.push(Proposal(target, value, data, false, 1));
        approved[id][msg.sender] = true;
        emit Proposed(id, msg.sender, target, value, data);
        emit Approved(id, msg.sender);
    }

    function approve(uint256 id) external onlySigner {
        Proposal storage p = _open(id);
        if (approved[id][msg.sender]) revert AlreadyApproved(id);
        approved[id][msg.sender] = true;
        p.approvals += 1;
        emit Approved(id, msg.sender);
    }

    function revoke(uint256 id) external onlySigner {
        Proposal storage p = _open(id);
        if (!approved[id][msg.sender]) revert NotApproved(id);
        approved[id][msg.sender] = false;
        p.approvals -= 1;
        emit Revoked(id, msg.sender);
    }

    function execute(uint256 id) external onlySigner {
        Proposal storage p = _open(id);
        if (p.approvals < threshold) revert NotEnoughApprovals(p.approvals, threshold);
        p.executed = true;
        (bool ok, bytes memory ret) = p.target.call{value: p.value}(p.data);
        if (!ok) revert CallFailed(ret);
        emit Executed(id);
    }

    function _open(uint256 id) internal view returns (Proposal storage p) {
        if (id >= proposals.length) revert UnknownProposal(id);
        p = proposals[id];
        if (p.executed) revert AlreadyExecuted(id);
    }
}
