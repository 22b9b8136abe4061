// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title StaffMultisig — M-of-N approvals of cooperative staff.
/// @notice Holds the privileged roles (admin, pauser, rule admin, meter admin) of the five
/// EnergySphere contracts. Any signer proposes a call (and approves it by proposing); it runs only
/// once at least `threshold` current signers approved it, and only once. Signers and the threshold
/// change only through the multisig itself (a proposal targeting this contract).
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
    uint256 public threshold;
    Proposal[] public proposals;
    mapping(uint256 => mapping(address => bool)) public approved;

    event Proposed(uint256 indexed id, address indexed proposer, address target, uint256 value, bytes data);
    event Approved(uint256 indexed id, address indexed signer);
    event Revoked(uint256 indexed id, address indexed signer);
    event Executed(uint256 indexed id);
    event SignerAdded(address indexed signer);
    event SignerRemoved(address indexed signer);
    event ThresholdChanged(uint256 threshold);

    error NotSigner();
    error InvalidSigners();
    error InvalidThreshold();
    error UnknownProposal(uint256 id);
    error AlreadyApproved(uint256 id);
    error NotApproved(uint256 id);
    error AlreadyExecuted(uint256 id);
    error NotEnoughApprovals(uint256 have, uint256 need);
    error CallFailed(bytes reason);
    error OnlyMultisig();

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

    modifier onlySelf() {
        if (msg.sender != address(this)) revert OnlyMultisig();
        _;
    }

    receive() external payable {}

    // --- lifecycle (only through an executed proposal of this multisig) ----------------------

    function addSigner(address signer) external onlySelf {
        _add(signer);
    }

    function removeSigner(address signer) external onlySelf {
        _remove(signer);
        if (threshold > signers.length) revert InvalidThreshold();
    }

    function replaceSigner(address previous, address signer) external onlySelf {
        _remove(previous);
        _add(signer);
    }

    function changeThreshold(uint256 threshold_) external onlySelf {
        if (threshold_ < 2 || threshold_ > signers.length) revert InvalidThreshold();
        threshold = threshold_;
        emit ThresholdChanged(threshold_);
    }

    /// @notice Approvals of a proposal by the current signers (a removed signer's no longer count).
    function approvalCount(uint256 id) public view returns (uint256 n) {
        for (uint256 i = 0; i < signers.length; ++i) {
            if (approved[id][signers[i]]) ++n;
        }
    }

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
        uint256 have = approvalCount(id);
        if (have < threshold) revert NotEnoughApprovals(have, threshold);
        p.executed = true;
        (bool ok, bytes memory ret) = p.target.call{value: p.value}(p.data);
        if (!ok) revert CallFailed(ret);
        emit Executed(id);
    }

    function _add(address signer) internal {
        if (signer == address(0) || isSigner[signer]) revert InvalidSigners();
        isSigner[signer] = true;
        signers.push(signer);
        emit SignerAdded(signer);
    }

    function _remove(address signer) internal {
        if (!isSigner[signer]) revert InvalidSigners();
        isSigner[signer] = false;
        uint256 n = signers.length;
        for (uint256 i = 0; i < n; ++i) {
            if (signers[i] == signer) {
                signers[i] = signers[n - 1];
                signers.pop();
                break;
            }
        }
        emit SignerRemoved(signer);
    }

    function _open(uint256 id) internal view returns (Proposal storage p) {
        if (id >= proposals.length) revert UnknownProposal(id);
        p = proposals[id];
        if (p.executed) revert AlreadyExecuted(id);
    }
}
