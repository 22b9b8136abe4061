"""Every personal field of every model, in one place, and what erasure does with it.

`member_erase` (apps/compliance/services.py) clears each field listed in `PERSONAL_FIELDS`, itself
or through the owning app's erasure service. `tests/test_personal_data_registry.py` fails when a
model gains a field named like personal data (name, e-mail, address, street, postal code, city,
phone, IBAN/BIC, coordinates, beneficiary, IP, user name, birth date) that is listed neither here
nor in `NOT_PERSONAL` with the reason it is not about a person.
"""

from __future__ import annotations

import re

#: model label → personal fields, and how erasure treats them.
PERSONAL_FIELDS: dict[str, dict[str, str]] = {
    "accounts.user": {
        "email": "replaced by an undeliverable pseudonym",
        "first_name": "cleared",
        "last_name": "cleared",
    },
    "accounts.member": {
        "legal_name": "replaced by 'Erased member <number>'",
        "street": "cleared",
        "postal_code": "cleared",
        "city": "cleared",
        "chain_salt": "destroyed: on-chain identifiers can no longer be linked to the member",
    },
    "account.emailaddress": {"email": "row deleted (allauth)"},
    "mfa.authenticator": {"data": "row deleted (TOTP seed, recovery codes)"},
    "axes.accessattempt": {"username": "rows naming the e-mail deleted", "ip_address": "same"},
    "axes.accesslog": {"username": "rows naming the e-mail deleted", "ip_address": "same"},
    "axes.accessfailurelog": {
        "username": "rows naming the e-mail deleted",
        "ip_address": "same",
    },
    "grid.connectionpoint": {
        "latitude": "cleared",
        "longitude": "cleared",
        "street": "cleared",
        "postal_code": "cleared",
        "city": "cleared",
    },
    "billing.joinapplication": {
        "email": "cleared",
        "legal_name": "replaced by the pseudonym",
        "street": "cleared",
        "postal_code": "cleared",
        "city": "cleared",
        "site_street": "cleared",
        "site_postal_code": "cleared",
        "site_city": "cleared",
        "account_holder": "replaced by the pseudonym",
        "iban": "cleared",
        "bic": "cleared",
    },
    "incentives.certificate": {"beneficiary": "replaced by the pseudonym"},
    "billing.mandate": {
        "account_holder": "replaced by the pseudonym (the mandate is revoked first)",
        "iban": "cleared",
        "bic": "cleared",
    },
    "billing.banktransaction": {"counterparty": "the payer's name replaced by the pseudonym"},
    "notifications.pushsubscription": {"endpoint": "rows deleted (a browser's push address)"},
    "notifications.notification": {"subject": "rows deleted", "body": "rows deleted"},
    "audit.auditlog": {
        "actor_label": "the e-mail replaced by the pseudonym",
        "details": "the member's name, e-mail and beneficiaries replaced by the pseudonym",
    },
}

#: model.field → why a field named like personal data is not about a person (or is kept).
NOT_PERSONAL: dict[str, str] = {
    "auth.permission.name": "a permission's name",
    "auth.group.name": "a role's name",
    "accounts.member.wallet_address": "a pseudonymous chain address the member linked; kept so "
    "settlements and certificates stay verifiable on chain (no name is stored with it)",
    "grid.drevent.signal_name": "an OpenADR signal name",
    "governance.proposaltype.name": "the name of a kind of decision in the statutes",
    "grid.openadrven.ven_name": "a device's name (the demo's are VEN-<site code>), not a person's",
    "grid.substation.name": "a grid asset",
    "grid.substation.latitude": "a grid asset's location",
    "grid.substation.longitude": "a grid asset's location",
    "grid.feeder.name": "a grid asset",
    "grid.transformer.name": "a grid asset",
    "grid.transformer.lv_bus_name": "a node of the power-flow model",
    "grid.gridline.name": "a grid asset",
    "grid.connectionpoint.bus_name": "a node of the power-flow model",
    "meters.meter.address": "the device key's address (a device, not a person)",
    "meters.meterkeyhistory.address": "an earlier device key's address (a device, not a person)",
    "meters.gatewaytoken.name": "an HTTP gateway's name (a device)",
    "chain.chainintent.contract_address": "a contract",
    "chain.chainaccount.address": "an account of the cooperative's signing keys",
    "chain.contractdeployment.name": "a contract",
    "chain.contractdeployment.address": "a contract",
    "chain.retiredcontract.name": "a contract",
    "chain.retiredcontract.address": "a contract",
    "chain.chainevent.name": "a contract event",
    "market.tariff.name": "a tariff",
    "incentives.sharedasset.name": "a community plant",
    "billing.supplytariff.name": "a tariff",
    "billing.sepafile.name": "a SEPA file's name",
    "billing.bankstatement.iban": "the cooperative's own bank account",
}

PERSONAL_NAME = re.compile(
    r"(^|_)(name|email|address|street|postal|city|phone|iban|bic|lat|latitude|lon|longitude|"
    r"beneficiary|birth|ip|username|holder|counterparty)($|_)"
)
