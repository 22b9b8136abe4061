"""Sign-In with Ethereum (EIP-4361) messages: build, parse, verify. No Django import.

Why not the `siwe` package: siwe 4.4.0 (latest) requires web3<8 and eth-account<0.14, and this
project runs web3 8 / eth-account 0.14 — installing it would downgrade both. The message format is
small and fully specified by the ABNF in EIP-4361, so it is implemented here and tested against
the specification's example message.

Grammar (EIP-4361):
    [ scheme "://" ] domain " wants you to sign in with your Ethereum account:" LF
    address LF
    LF
    [ statement LF ]
    LF
    "URI: " uri LF
    "Version: " version LF
    "Chain ID: " chain-id LF
    "Nonce: " nonce LF
    "Issued At: " issued-at
    [ LF "Expiration Time: " expiration-time ]
    [ LF "Not Before: " not-before ]
    [ LF "Request ID: " request-id ]
    [ LF "Resources:" *( LF "- " URI ) ]
The signature is an EIP-191 personal_sign over the UTF-8 bytes of the message.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_checksum_address, is_hex_address, to_checksum_address

HEADER_SUFFIX = " wants you to sign in with your Ethereum account:"
NONCE_RE = re.compile(r"^[A-Za-z0-9]{8,}$")
ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_NONCE_ALPHABET = string.ascii_letters + string.digits


class SiweError(ValueError):
    """The message is malformed, or does not verify."""


def generate_nonce(length: int = 17) -> str:
    """A random alphanumeric nonce (EIP-4361: at least 8 characters)."""
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(length))


def format_datetime(value: datetime) -> str:
    """RFC 3339 in UTC with a trailing Z, whole seconds."""
    if value.tzinfo is None:
        raise SiweError("naive datetime")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise SiweError(f"not an RFC 3339 date-time: {value!r}") from exc
    if parsed.tzinfo is None:
        raise SiweError(f"date-time without offset: {value!r}")
    return parsed.astimezone(UTC)


@dataclass(frozen=True)
class SiweMessage:
    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: datetime
    statement: str | None = None
    version: str = "1"
    expiration_time: datetime | None = None
    not_before: datetime | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = field(default_factory=tuple)
    scheme: str | None = None
    # The exact text of a parsed message (date-times keep their original spelling).
    raw: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not ADDRESS_RE.match(self.address):
            raise SiweError("address must be 0x followed by 40 hex digits")
        if not NONCE_RE.match(self.nonce):
            raise SiweError("nonce must be at least 8 alphanumeric characters")
        if self.version != "1":
            raise SiweError("version must be 1")
        if self.statement is not None and ("\n" in self.statement or not self.statement):
            raise SiweError("statement must be one non-empty line")
        if not self.domain or "\n" in self.domain or " " in self.domain:
            raise SiweError("invalid domain")

    def to_text(self) -> str:
        if self.raw is not None:
            return self.raw
        prefix = f"{self.scheme}://" if self.scheme else ""
        lines = [f"{prefix}{self.domain}{HEADER_SUFFIX}", self.address, ""]
        # [ statement LF ] LF: a statement line and a blank line, or just the blank line.
        lines += [self.statement, ""] if self.statement is not None else [""]
        lines += [
            f"URI: {self.uri}",
            f"Version: {self.version}",
            f"Chain ID: {self.chain_id}",
            f"Nonce: {self.nonce}",
            f"Issued At: {format_datetime(self.issued_at)}",
        ]
        if self.expiration_time is not None:
            lines.append(f"Expiration Time: {format_datetime(self.expiration_time)}")
        if self.not_before is not None:
            lines.append(f"Not Before: {format_datetime(self.not_before)}")
        if self.request_id is not None:
            lines.append(f"Request ID: {self.request_id}")
        if self.resources:
            lines.append("Resources:")
            lines += [f"- {resource}" for resource in self.resources]
        return "\n".join(lines)

    @classmethod
    def parse(cls, text: str) -> SiweMessage:
        """Parse a message strictly by the grammar; raise SiweError on any deviation."""
        text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        cursor = 0

        def take() -> str:
            nonlocal cursor
            if cursor >= len(lines):
                raise SiweError("message ends too early")
            line = lines[cursor]
            cursor += 1
            return line

        header = take()
        if not header.endswith(HEADER_SUFFIX):
            raise SiweError("first line must end with the Sign-In with Ethereum preamble")
        origin = header[: -len(HEADER_SUFFIX)]
        scheme = None
        if "://" in origin:
            scheme, origin = origin.split("://", 1)
        address = take()
        if take() != "":
            raise SiweError("expected an empty line after the address")
        statement = None
        line = take()
        if line != "":
            statement = line
            if take() != "":
                raise SiweError("expected an empty line after the statement")
        fields: dict[str, str] = {}
        for key in ("URI", "Version", "Chain ID", "Nonce", "Issued At"):
            line = take()
            if not line.startswith(f"{key}: "):
                raise SiweError(f"expected '{key}: ' line")
            fields[key] = line[len(key) + 2 :]
        optional: dict[str, str] = {}
        resources: list[str] = []
        for key in ("Expiration Time", "Not Before", "Request ID"):
            if cursor < len(lines) and lines[cursor].startswith(f"{key}: "):
                optional[key] = take()[len(key) + 2 :]
        if cursor < len(lines) and lines[cursor] == "Resources:":
            take()
            while cursor < len(lines) and lines[cursor].startswith("- "):
                resources.append(take()[2:])
        if cursor != len(lines):
            raise SiweError(f"unexpected content on line {cursor + 1}")
        try:
            chain_id = int(fields["Chain ID"])
        except ValueError as exc:
            raise SiweError("Chain ID must be an integer") from exc
        return cls(
            domain=origin,
            scheme=scheme,
            address=address,
            statement=statement,
            uri=fields["URI"],
            version=fields["Version"],
            chain_id=chain_id,
            nonce=fields["Nonce"],
            issued_at=parse_datetime(fields["Issued At"]),
            expiration_time=(
                parse_datetime(optional["Expiration Time"])
                if "Expiration Time" in optional
                else None
            ),
            not_before=(
                parse_datetime(optional["Not Before"]) if "Not Before" in optional else None
            ),
            request_id=optional.get("Request ID"),
            resources=tuple(resources),
            raw=text,
        )


def recover_signer(message_text: str, signature: str | bytes) -> str:
    """The checksummed address that signed `message_text` with EIP-191 personal_sign."""
    try:
        signer = Account.recover_message(encode_defunct(text=message_text), signature=signature)
    except Exception as exc:  # noqa: BLE001 - any decoding failure is a bad signature
        raise SiweError("signature is not a valid secp256k1 signature") from exc
    return to_checksum_address(signer)


def verify(
    message: SiweMessage,
    signature: str | bytes,
    *,
    domain: str,
    nonce: str,
    now: datetime,
    chain_id: int | None = None,
) -> str:
    """Check the signature, domain, nonce and validity window. Returns the checksummed address."""
    if message.domain != domain:
        raise SiweError(f"message is for domain {message.domain!r}, expected {domain!r}")
    if not secrets.compare_digest(message.nonce, nonce):
        raise SiweError("nonce does not match")
    if chain_id is not None and message.chain_id != chain_id:
        raise SiweError(f"message is for chain {message.chain_id}, expected {chain_id}")
    if message.expiration_time is not None and now >= message.expiration_time:
        raise SiweError("message has expired")
    if message.not_before is not None and now < message.not_before:
        raise SiweError("message is not valid yet")
    if not is_hex_address(message.address):
        raise SiweError("invalid address")
    # EIP-55: a mixed-case address must carry a valid checksum.
    body = message.address[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(message.address):
        raise SiweError("address checksum (EIP-55) is wrong")
    signer = recover_signer(message.to_text(), signature)
    if signer != to_checksum_address(message.address):
        raise SiweError("signature was not made by the address in the message")
    return signer
