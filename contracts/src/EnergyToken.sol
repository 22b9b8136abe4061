// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// One certificate move (custodial transfer), used in batches by EnergyTrading.
struct CreditMove {
    address from;
    address to;
    uint256 id;
    uint256 amountWh;
}

/// @title EnergyToken — granular energy certificates (ERC-1155, 1 unit = 1 Wh).
/// @notice A token id stands for one producing asset and one hour (EnergyTag granular
/// certificates): id = assetId << 64 | hourStart. Issue → transfer → claim (retire, burns, with a
/// beneficiary reference) or cancel (issuer correction, burns). Energy Web Origin moved from
/// ERC-721 to ERC-1155 so partial transfers keep one certificate history.
/// @dev Custodial holders have no keys on line: the CUSTODIAN_ROLE (the back-office operator and
/// EnergyTrading) moves and claims on their behalf; holders with their own wallet can also
/// transfer and claim themselves. Privileged roles (admin, pauser) belong to the staff multisig.
contract EnergyToken is ERC1155, AccessControl, Pausable {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");
    bytes32 public constant CUSTODIAN_ROLE = keccak256("CUSTODIAN_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// certificate record hash => issued (one issuance per off-chain certificate record)
    mapping(bytes32 => bool) public issued;

    event CertificateIssued(uint256 indexed id, address indexed to, uint256 amountWh, bytes32 certificateHash);
    event CertificateClaimed(address indexed holder, uint256 indexed id, uint256 amountWh, bytes32 beneficiaryHash);
    event CertificateCancelled(address indexed holder, uint256 indexed id, uint256 amountWh, bytes32 reasonHash);

    error AlreadyIssued(bytes32 certificateHash);
    error ZeroAmount();
    error NotWholeHour(uint64 hourStart);

    constructor(address admin, address operator) ERC1155("") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(MINTER_ROLE, operator);
        _grantRole(CUSTODIAN_ROLE, operator);
    }

    function tokenIdFor(uint192 assetId, uint64 hourStart) external pure returns (uint256) {
        if (hourStart % 3600 != 0) revert NotWholeHour(hourStart);
        return (uint256(assetId) << 64) | hourStart;
    }

    function mint(address to, uint256 id, uint256 amountWh, bytes32 certificateHash)
        external
        onlyRole(MINTER_ROLE)
    {
        if (amountWh == 0) revert ZeroAmount();
        if (issued[certificateHash]) revert AlreadyIssued(certificateHash);
        issued[certificateHash] = true;
        _mint(to, id, amountWh, "");
        emit CertificateIssued(id, to, amountWh, certificateHash);
    }

    function custodianTransfer(address from, address to, uint256 id, uint256 amountWh)
        external
        onlyRole(CUSTODIAN_ROLE)
    {
        if (amountWh == 0) revert ZeroAmount();
        _safeTransferFrom(from, to, id, amountWh, "");
    }

    /// @notice Many single moves in one call (EnergyTrading settles credits this way).
    function custodianTransferBatch(CreditMove[] calldata moves) external onlyRole(CUSTODIAN_ROLE) {
        for (uint256 i = 0; i < moves.length; ++i) {
            CreditMove calldata m = moves[i];
            if (m.amountWh == 0) revert ZeroAmount();
            _safeTransferFrom(m.from, m.to, m.id, m.amountWh, "");
        }
    }

    /// @notice Claim (retire) own certificates for a beneficiary.
    function claim(uint256 id, uint256 amountWh, bytes32 beneficiaryHash) external {
        _claim(_msgSender(), id, amountWh, beneficiaryHash);
    }

    function claimFor(address holder, uint256 id, uint256 amountWh, bytes32 beneficiaryHash)
        external
        onlyRole(CUSTODIAN_ROLE)
    {
        _claim(holder, id, amountWh, beneficiaryHash);
    }

    function cancel(address holder, uint256 id, uint256 amountWh, bytes32 reasonHash)
        external
        onlyRole(MINTER_ROLE)
    {
        if (amountWh == 0) revert ZeroAmount();
        _burn(holder, id, amountWh);
        emit CertificateCancelled(holder, id, amountWh, reasonHash);
    }

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    function supportsInterface(bytes4 interfaceId) public view override(ERC1155, AccessControl) returns (bool) {
        return super.supportsInterface(interfaceId);
    }

    function _claim(address holder, uint256 id, uint256 amountWh, bytes32 beneficiaryHash) internal {
        if (amountWh == 0) revert ZeroAmount();
        _burn(holder, id, amountWh);
        emit CertificateClaimed(holder, id, amountWh, beneficiaryHash);
    }

    function _update(address from, address to, uint256[] memory ids, uint256[] memory values)
        internal
        override
        whenNotPaused
    {
        super._update(from, to, ids, values);
    }
}
