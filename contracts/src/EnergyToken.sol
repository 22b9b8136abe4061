// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {GuardedPausable, PeriodCap, PeriodCaps} from "./Guarded.sol";

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
/// @dev Least privilege: MINTER_ROLE (the minting key) mints within a per-period cap set by the
/// multisig and cancels custodial holdings; CUSTODIAN_ROLE (the certificates key and
/// EnergyTrading) moves and claims only between registered custodial accounts. A custodial
/// account is registered with a signature of its own key (derived by the cooperative from its
/// custody secret), so a stolen duty key cannot declare a member's own wallet custodial. A wallet
/// the cooperative does not hold moves only with its owner's signature: its own transaction, an
/// ERC-1155 approval, or a signed transfer authorisation (EIP-712, `transferWithAuthorization`).
/// Privileged roles (admin, pauser) belong to the staff multisig; a guardian may pause.
contract EnergyToken is ERC1155, GuardedPausable, EIP712 {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");
    bytes32 public constant CUSTODIAN_ROLE = keccak256("CUSTODIAN_ROLE");
    bytes32 public constant TRANSFER_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferAuthorization(address from,address to,uint256 id,uint256 amountWh,uint256 validBefore,bytes32 nonce)"
    );
    /// Prefixes of the custody statements a custodial account's key signs (EIP-191).
    bytes32 public constant CUSTODY_STATEMENT = keccak256("EnergySphere custodial account");
    bytes32 public constant LINK_STATEMENT = keccak256("EnergySphere linked wallet");

    /// certificate record hash => issued (one issuance per off-chain certificate record)
    mapping(bytes32 => bool) public issued;
    /// accounts whose key the cooperative holds (custody), registered with that key's signature
    mapping(address => bool) public custodial;
    /// custodial account => the member's own wallet its balances may be withdrawn to
    mapping(address => address) public linkedWallet;
    /// wallets that some custodial account links to (custodial moves may deliver to them)
    mapping(address => bool) public isLinkedWallet;
    /// holder => authorisation nonce => used
    mapping(address => mapping(bytes32 => bool)) public authorizationUsed;
    PeriodCap internal _mintCap;

    event CertificateIssued(uint256 indexed id, address indexed to, uint256 amountWh, bytes32 certificateHash);
    event CertificateClaimed(address indexed holder, uint256 indexed id, uint256 amountWh, bytes32 beneficiaryHash);
    event CertificateCancelled(address indexed holder, uint256 indexed id, uint256 amountWh, bytes32 reasonHash);
    event CustodialRegistered(address indexed account);
    event WalletLinked(address indexed account, address indexed wallet);
    event MintCapSet(uint256 capWh, uint64 periodSeconds);
    event AuthorizationUsed(address indexed from, bytes32 indexed nonce);

    error AlreadyIssued(bytes32 certificateHash);
    error ZeroAmount();
    error ZeroAddress();
    error NotWholeHour(uint64 hourStart);
    error NotCustodial(address account);
    error InvalidCustodySignature(address account);
    error MintCapExceeded(uint256 capWh, uint256 usedWh, uint256 amountWh);
    error InvalidCap();
    error AuthorizationExpired(uint256 validBefore);
    error AuthorizationAlreadyUsed(address from, bytes32 nonce);
    error InvalidAuthorization(address from);

    constructor(address admin, address minter, address custodian) ERC1155("") EIP712("EnergyToken", "1") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(MINTER_ROLE, minter);
        _grantRole(CUSTODIAN_ROLE, custodian);
    }

    function tokenIdFor(uint192 assetId, uint64 hourStart) external pure returns (uint256) {
        if (hourStart % 3600 != 0) revert NotWholeHour(hourStart);
        return (uint256(assetId) << 64) | hourStart;
    }

    // --- issuance (capped) -------------------------------------------------------------------

    /// @notice Staff (multisig) set the most Wh the minting key may issue per period.
    function setMintCap(uint256 capWh, uint64 periodSeconds) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (!PeriodCaps.set(_mintCap, capWh, periodSeconds)) revert InvalidCap();
        emit MintCapSet(capWh, periodSeconds);
    }

    /// @notice (cap, used this period, headroom, period length) of minting.
    function mintAllowance() external view returns (uint256 capWh, uint256 usedWh, uint256 headroomWh, uint64 periodSeconds) {
        capWh = _mintCap.cap;
        usedWh = PeriodCaps.usedNow(_mintCap);
        headroomWh = capWh > usedWh ? capWh - usedWh : 0;
        periodSeconds = _mintCap.periodSeconds;
    }

    function mint(address to, uint256 id, uint256 amountWh, bytes32 certificateHash)
        external
        onlyRole(MINTER_ROLE)
    {
        if (amountWh == 0) revert ZeroAmount();
        if (issued[certificateHash]) revert AlreadyIssued(certificateHash);
        if (!PeriodCaps.trySpend(_mintCap, amountWh)) {
            revert MintCapExceeded(_mintCap.cap, PeriodCaps.usedNow(_mintCap), amountWh);
        }
        issued[certificateHash] = true;
        _mint(to, id, amountWh, "");
        emit CertificateIssued(id, to, amountWh, certificateHash);
    }

    function cancel(address holder, uint256 id, uint256 amountWh, bytes32 reasonHash)
        external
        onlyRole(MINTER_ROLE)
    {
        if (amountWh == 0) revert ZeroAmount();
        _requireMovable(holder);
        _burn(holder, id, amountWh);
        emit CertificateCancelled(holder, id, amountWh, reasonHash);
    }

    // --- custody ------------------------------------------------------------------------------

    /// @notice What a custodial account's key signs to be registered (valid for any EnergyToken
    /// of this chain: custody is a fact about the key, not about one deployment).
    function custodyDigest(address account) public view returns (bytes32) {
        return MessageHashUtils.toEthSignedMessageHash(keccak256(abi.encode(CUSTODY_STATEMENT, block.chainid, account)));
    }

    /// @notice What a custodial account's key signs to link its member's wallet (any EnergyToken
    /// of this chain, like custodyDigest).
    function linkDigest(address account, address wallet) public view returns (bytes32) {
        return MessageHashUtils.toEthSignedMessageHash(
            keccak256(abi.encode(LINK_STATEMENT, block.chainid, account, wallet))
        );
    }

    /// @notice Register a custodial account: `signature` is the account's own (EIP-191) signature
    /// of custodyDigest(account), which only the holder of the cooperative's custody secret can
    /// make.
    function registerCustodial(address account, bytes calldata signature) external onlyRole(CUSTODIAN_ROLE) {
        if (!_signedBy(account, custodyDigest(account), signature)) revert InvalidCustodySignature(account);
        if (!custodial[account]) {
            custodial[account] = true;
            emit CustodialRegistered(account);
        }
    }

    /// @notice Link a custodial account to its member's own wallet (signed by the custodial key):
    /// custodial balances may then be withdrawn, and settlements may deliver, to that wallet.
    function linkWallet(address account, address wallet, bytes calldata signature)
        external
        onlyRole(CUSTODIAN_ROLE)
    {
        if (wallet == address(0)) revert ZeroAddress();
        if (!custodial[account]) revert NotCustodial(account);
        if (!_signedBy(account, linkDigest(account, wallet), signature)) revert InvalidCustodySignature(account);
        address previous = linkedWallet[account];
        if (previous != address(0)) isLinkedWallet[previous] = false;
        linkedWallet[account] = wallet;
        isLinkedWallet[wallet] = true;
        emit WalletLinked(account, wallet);
    }

    /// @notice Move a custodial balance to the member's linked wallet (the member's withdrawal).
    function withdraw(address account, uint256 id, uint256 amountWh) external {
        address wallet = linkedWallet[account];
        if (wallet == address(0)) revert NotCustodial(account);
        if (_msgSender() != wallet) _checkRole(CUSTODIAN_ROLE);
        if (amountWh == 0) revert ZeroAmount();
        _safeTransferFrom(account, wallet, id, amountWh, "");
    }

    function custodianTransfer(address from, address to, uint256 id, uint256 amountWh)
        external
        onlyRole(CUSTODIAN_ROLE)
    {
        if (amountWh == 0) revert ZeroAmount();
        _requireMovable(from);
        _requireCustodyDestination(to);
        _safeTransferFrom(from, to, id, amountWh, "");
    }

    /// @notice Many single moves in one call (EnergyTrading settles credits this way).
    function custodianTransferBatch(CreditMove[] calldata moves) external onlyRole(CUSTODIAN_ROLE) {
        for (uint256 i = 0; i < moves.length; ++i) {
            CreditMove calldata m = moves[i];
            if (m.amountWh == 0) revert ZeroAmount();
            _requireMovable(m.from);
            _requireCustodyDestination(m.to);
            _safeTransferFrom(m.from, m.to, m.id, m.amountWh, "");
        }
    }

    /// @notice A transfer the holder signed (EIP-712 TransferAuthorization), sent by anyone.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 id,
        uint256 amountWh,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external {
        if (block.timestamp >= validBefore) revert AuthorizationExpired(validBefore);
        if (authorizationUsed[from][nonce]) revert AuthorizationAlreadyUsed(from, nonce);
        if (amountWh == 0) revert ZeroAmount();
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(TRANSFER_AUTHORIZATION_TYPEHASH, from, to, id, amountWh, validBefore, nonce))
        );
        if (!_signedBy(from, digest, signature)) revert InvalidAuthorization(from);
        authorizationUsed[from][nonce] = true;
        emit AuthorizationUsed(from, nonce);
        _safeTransferFrom(from, to, id, amountWh, "");
    }

    /// @notice Claim (retire) own certificates for a beneficiary.
    function claim(uint256 id, uint256 amountWh, bytes32 beneficiaryHash) external {
        _claim(_msgSender(), id, amountWh, beneficiaryHash);
    }

    function claimFor(address holder, uint256 id, uint256 amountWh, bytes32 beneficiaryHash)
        external
        onlyRole(CUSTODIAN_ROLE)
    {
        _requireMovable(holder);
        _claim(holder, id, amountWh, beneficiaryHash);
    }

    function supportsInterface(bytes4 interfaceId) public view override(ERC1155, AccessControl) returns (bool) {
        return super.supportsInterface(interfaceId);
    }

    /// A holder the caller may move for: a custodial account, or a wallet whose owner approved
    /// the caller (ERC-1155 setApprovalForAll, the owner's own transaction).
    function _requireMovable(address holder) internal view {
        if (!custodial[holder] && !isApprovedForAll(holder, _msgSender())) revert NotCustodial(holder);
    }

    function _requireCustodyDestination(address to) internal view {
        if (!custodial[to] && !isLinkedWallet[to]) revert NotCustodial(to);
    }

    function _signedBy(address signer, bytes32 digest, bytes calldata signature) internal pure returns (bool) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        return err == ECDSA.RecoverError.NoError && signer != address(0) && recovered == signer;
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
