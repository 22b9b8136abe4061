"""The audit event catalogue: every event the code writes to the audit log.

Grammar: ``"<entity>.<verb>"`` in snake_case, where ``<entity>`` names the thing written (the
model, or the record a service produces, in the singular unless the event is about a set) and
``<verb>`` is the past-tense verb of what happened to it: ``settlement_run.settled``,
``statement.issued``, ``meter_key.rotated``. The part before the dot is what the audit-log report
groups its totals by.

`apps.audit.services.audit_log_write` accepts only members of `AuditEvent`; a new kind of write
adds a member here first.
"""

from __future__ import annotations

from django.db import models


class AuditEvent(models.TextChoices):
    # accounts
    USER_ROLE_GRANTED = "user_role.granted", "User role granted"
    WALLET_LINKED = "wallet.linked", "Wallet linked"
    WALLET_LINK_FAILED = "wallet_link.failed", "Wallet link failed"
    MFA_ENROLLMENT_ISSUED = "mfa_enrollment.issued", "MFA enrollment link issued"
    MFA_ENROLLMENT_REDEEMED = "mfa_enrollment.redeemed", "MFA enrollment link redeemed"
    MFA_ENROLLMENT_COMPLETED = "mfa_enrollment.completed", "MFA enrollment completed"
    MFA_RESET = "mfa.reset", "MFA reset by a superuser"
    ADMIN_LIST_EXPORTED = "admin_list.exported", "Admin list exported (CSV/XLSX)"
    MEMBER_APPLIED = "member.applied", "Membership applicant registered"
    MEMBER_ACTIVATED = "member.activated", "Member admitted (active)"
    MEMBER_SUSPENDED = "member.suspended", "Member suspended"
    MEMBER_REACTIVATED = "member.reactivated", "Member reactivated"
    MEMBER_LEFT = "member.left", "Member left"
    MEMBER_INVITATION_SENT = "member_invitation.sent", "Member account invitation sent"
    # billing
    SITE_MOVED = "site.moved", "Move out / move in at a site"
    BILLING_RUN_COMPLETED = "billing_run.completed", "Billing run completed"
    JOIN_APPLICATION_SUBMITTED = "join_application.submitted", "Join application submitted"
    JOIN_APPLICATION_VERIFIED = "join_application.verified", "Join application e-mail verified"
    JOIN_APPLICATION_APPROVED = "join_application.approved", "Join application approved"
    JOIN_APPLICATION_REJECTED = "join_application.rejected", "Join application rejected"
    JOIN_APPLICATION_DUPLICATE = (
        "join_application.duplicated",
        "Join attempt with an address already registered",
    )
    MEMBER_SITE_ADDED = "member_site.added", "Site and supply contract added to a member"
    MEMBER_FINAL_INVOICE_DRAFTED = "member_final_invoice.drafted", "Final invoice drafted"
    SHARE_CAPITAL_INVOICED = "share_capital.invoiced", "Share capital invoiced"
    SHARE_CAPITAL_REFUNDED = "share_capital.refunded", "Share capital refunded"
    INVOICE_REVIEWED = "invoice.reviewed", "Invoice reviewed"
    INVOICE_ISSUED = "invoice.issued", "Invoice issued"
    INVOICE_CREDITED = "invoice.credited", "Invoice annulled by a credit note"
    INVOICE_RECTIFIED = "invoice.rectified", "Invoice rectified"
    MANDATE_CREATED = "mandate.created", "SEPA mandate created"
    MANDATE_REVOKED = "mandate.revoked", "SEPA mandate revoked"
    SEPA_FILES_CREATED = "sepa_files.created", "SEPA files created"
    BANK_STATEMENT_IMPORTED = "bank_statement.imported", "Bank statement imported"
    BANK_TRANSACTION_ASSIGNED = "bank_transaction.assigned", "Bank entry assigned to an invoice"
    DISPUTE_OPENED = "dispute.opened", "Invoice dispute opened"
    DISPUTE_CLOSED = "dispute.closed", "Invoice dispute closed"
    REMINDER_SENT = "reminder.sent", "Payment reminder sent"
    # chain
    CONTRACTS_DEPLOYED = "contracts.deployed", "Contracts deployed"
    CONTRACTS_UPGRADED = "contracts.upgraded", "Contracts upgraded (new deployment + migration)"
    CHAIN_INTENT_SUBMITTED = "chain_intent.submitted", "Chain intent submitted"
    CHAIN_INTENT_RETRIED = "chain_intent.retried", "Chain intent retried"
    CHAIN_ALERT_ACKNOWLEDGED = "chain_alert.acknowledged", "Chain alert acknowledged"
    METER_INTERVAL_ANCHORED = "meter_interval.anchored", "Meter interval anchored"
    METER_READING_EXCLUDED = "meter_reading.excluded", "Tampered reading left out of anchoring"
    MULTISIG_CALL_EXECUTED = "multisig_call.executed", "Multisig call executed"
    # compliance
    REPORT_EXPORTED = "report.exported", "Report exported"
    REPORT_VERIFIED = "report.verified", "Report verified"
    AUDIT_LOG_REDACTED = "audit_log.redacted", "Audit-log rows redacted by an erasure"
    MEMBER_DATA_EXPORTED = "member_data.exported", "Member data exported"
    ERASURE_REQUEST_CREATED = "erasure_request.created", "Erasure requested"
    ERASURE_REQUEST_REFUSED = "erasure_request.refused", "Erasure refused"
    MEMBER_ERASED = "member.erased", "Member erased"
    # demo
    DEMO_COOPERATIVE_LOADED = "demo_cooperative.loaded", "Demo cooperative loaded"
    # grid
    DISPATCH_PLAN_CREATED = "dispatch_plan.created", "Dispatch plan created"
    CONNECTION_POINT_CREATED = "connection_point.created", "Connection point (site) created"
    DEVICE_COMMAND_ACKNOWLEDGED = "device_command.acknowledged", "Device command acknowledged"
    DEVICE_COMMAND_REJECTED = "device_command.rejected", "Device command rejected"
    DR_EVENT_CREATED = "dr_event.created", "DR event created"
    DR_EVENT_PUBLISHED = "dr_event.published", "DR event published"
    DR_EVENT_ACTIVATED = "dr_event.activated", "DR event activated"
    DR_EVENT_COMPLETED = "dr_event.completed", "DR event completed"
    DR_EVENT_CANCELLED = "dr_event.cancelled", "DR event cancelled"
    DR_EVENT_MEASURED = "dr_event.measured", "DR event measured"
    DR_PARTICIPATION_OPTED = "dr_participation.opted", "DR participation opted in or out"
    DR_EVENT_TRIGGERED = "dr_event.triggered", "Automatic DR event triggered by an overload"
    DEVICE_COMMAND_ACK_REFUSED = "device_command_ack.refused", "Unsigned or mismatched ack refused"
    FLEXIBLE_DEVICE_FLAGGED = "flexible_device.flagged", "Device flagged unresponsive"
    FLEXIBLE_DEVICE_UNFLAGGED = "flexible_device.unflagged", "Device heard from again"
    CHARGE_POINT_REGISTERED = "charge_point.registered", "Charge point registered"
    CHARGE_POINT_PASSWORD_SET = "charge_point_password.set", "Charge point password set"
    CHARGE_POINT_BOOTED = "charge_point.booted", "Charge point booted"
    CHARGING_TOKEN_ISSUED = "charging_token.issued", "Charging token issued"
    CHARGING_SESSION_STARTED = "charging_session.started", "Charging session started"
    CHARGING_SESSION_STOPPED = "charging_session.stopped", "Charging session stopped"
    OPENADR_VEN_PROVISIONED = "openadr_ven.provisioned", "OpenADR VEN provisioned"
    OPENADR_VEN_REGISTERED = "openadr_ven.registered", "OpenADR VEN registered"
    FORECAST_MODEL_CHOSEN = "forecast_model.chosen", "Forecast model chosen"
    STABILITY_ALERTS_RAISED = "stability_alerts.raised", "Stability alerts raised"
    # incentives
    CERTIFICATE_ISSUED = "certificate.issued", "Certificate issued"
    CERTIFICATE_TRANSFERRED = "certificate.transferred", "Certificate transferred"
    CERTIFICATE_CLAIMED = "certificate.claimed", "Certificate claimed"
    CERTIFICATE_CANCELLED = "certificate.cancelled", "Certificate cancelled"
    CERTIFICATE_TOKEN_CORRECTED = "certificate_token.corrected", "Certificate token corrected"
    CERTIFICATES_AUTO_CLAIMED = "certificates.auto_claimed", "Certificates auto-claimed"
    CLAIM_INSTRUCTION_SET = "claim_instruction.set", "Standing claim instruction set"
    REWARD_GRANTED = "reward.granted", "Reward granted"
    REWARD_REDEEMED = "reward.redeemed", "Reward tokens redeemed"
    SHARED_ASSET_SHARES_SET = "shared_asset_shares.set", "Shared asset shares set"
    SHARED_ASSET_PERIOD_SETTLED = "shared_asset_period.settled", "Shared asset month allocated"
    SHARED_ASSET_REVENUE_ALLOCATED = (
        "shared_asset_revenue.allocated",
        "Shared asset revenue allocated",
    )
    # market
    ORDER_PLACED = "order.placed", "Order placed"
    ORDER_CANCELLED = "order.cancelled", "Order cancelled"
    ORDERS_GENERATED = "orders.generated", "Orders generated"
    TRADING_PREFERENCE_UPDATED = "trading_preference.updated", "Trading preference updated"
    MARKET_INTERVAL_CLEARED = "market_interval.cleared", "Market interval cleared"
    SETTLEMENT_RUN_CLEARED = "settlement_run.cleared", "Settlement run cleared"
    SETTLEMENT_RUN_SETTLED = "settlement_run.settled", "Settlement run settled"
    SETTLEMENT_RUN_RESETTLED = "settlement_run.resettled", "Settlement run re-settled"
    SETTLEMENT_RUN_ANCHORED = "settlement_run.anchored", "Settlement run anchored"
    STATEMENT_GENERATED = "statement.generated", "Statement generated"
    STATEMENT_REVIEWED = "statement.reviewed", "Statement reviewed"
    STATEMENT_ISSUED = "statement.issued", "Statement issued"
    TARIFF_CREATED = "tariff.created", "Tariff version created"
    # meters
    READING_GAPS_ESTIMATED = "reading_gaps.estimated", "Reading gaps estimated"
    METER_KEY_ROTATED = "meter_key.rotated", "Meter key rotated"
    METER_ASSIGNED = "meter.assigned", "Meter assigned to a member"
    METER_REGISTERED = "meter.registered", "Meter registered"
    METER_EXCHANGED = "meter.exchanged", "Meter exchanged"
    METER_REGISTERS_READ = "meter_registers.read", "Meter registers read (move)"
    GATEWAY_TOKEN_ISSUED = "gateway_token.issued", "HTTP gateway token issued"
    QUARANTINE_REPROCESSED = "quarantine.reprocessed", "Quarantine re-processed"
    CONFLICT_ACCEPTED = "conflict.accepted", "Reading conflict accepted (new current version)"
    CONFLICT_DISMISSED = "conflict.dismissed", "Reading conflict dismissed"
    READINGS_BACKFILLED = "readings.backfilled", "Readings backfilled"
    # notifications
    NOTIFICATION_CREATED = "notification.created", "Notification created"
    NOTIFICATIONS_READ = "notifications.read", "Notifications marked read"
    NOTIFICATION_DELIVERY_SENT = "notification_delivery.sent", "Notification delivered"
    NOTIFICATION_DELIVERY_FAILED = "notification_delivery.failed", "Notification delivery failed"
    NOTIFICATION_PREFERENCES_UPDATED = (
        "notification_preferences.updated",
        "Notification preferences updated",
    )
    PUSH_SUBSCRIPTION_ADDED = "push_subscription.added", "Web push subscription added"
    PUSH_SUBSCRIPTION_REMOVED = "push_subscription.removed", "Web push subscription removed"
    # governance
    ASSEMBLY_SAVED = "assembly.saved", "General assembly saved"
    PROPOSAL_SAVED = "proposal.saved", "Proposal saved"
    PROPOSAL_OPENED = "proposal.opened", "Proposal opened for voting"
    PROPOSAL_CLOSED = "proposal.closed", "Proposal closed and tallied"
    BALLOT_CAST = "ballot.cast", "Ballot cast (who took part; never the choice)"
    PROXY_GRANTED = "proxy.granted", "Voting proxy granted"
    PROXY_REVOKED = "proxy.revoked", "Voting proxy revoked"
