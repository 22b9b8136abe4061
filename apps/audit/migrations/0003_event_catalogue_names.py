"""Existing audit rows take the event names of the catalogue (apps.audit.events): one grammar,
"<entity>.<past-tense verb>". Names already in that grammar are unchanged. Reversible."""

from django.db import migrations

# old name -> catalogue name, as of this migration (the catalogue may grow later).
RENAMES = {
    "user.role_granted": "user_role.granted",
    "member.wallet_linked": "wallet.linked",
    "member.wallet_link_failed": "wallet_link.failed",
    "chain.contracts_deployed": "contracts.deployed",
    "chain.intent_submitted": "chain_intent.submitted",
    "chain.intent_retried": "chain_intent.retried",
    "chain.meter_interval_anchored": "meter_interval.anchored",
    "chain.multisig_call": "multisig_call.executed",
    "member.data_exported": "member_data.exported",
    "member.erasure_requested": "erasure_request.created",
    "member.erasure_refused": "erasure_request.refused",
    "demo.cooperative_loaded": "demo_cooperative.loaded",
    "dr_event.active": "dr_event.activated",
    "dr_participation.opt": "dr_participation.opted",
    "forecast.model_chosen": "forecast_model.chosen",
    "stability.forecast_alerts": "stability_alerts.raised",
    "certificate.corrected_down": "certificate_token.corrected",
    "shared_asset.shares_set": "shared_asset_shares.set",
    "shared_asset.revenue_allocated": "shared_asset_revenue.allocated",
    "market.order_placed": "order.placed",
    "market.order_cancelled": "order.cancelled",
    "market.orders_generated": "orders.generated",
    "market.preference_updated": "trading_preference.updated",
    "market.interval_cleared": "market_interval.cleared",
    "market.run_cleared": "settlement_run.cleared",
    "market.run_settled": "settlement_run.settled",
    "market.run_resettled": "settlement_run.resettled",
    "market.run_anchored": "settlement_run.anchored",
    "market.statement_generated": "statement.generated",
    "market.statement_reviewed": "statement.reviewed",
    "market.statement_issued": "statement.issued",
    "meters.gaps_estimate": "reading_gaps.estimated",
    "meters.key_rotate": "meter_key.rotated",
    "meters.quarantine_reprocess": "quarantine.reprocessed",
    "meters.readings_backfill": "readings.backfilled",
}


def rename(apps, schema_editor, mapping):
    AuditLog = apps.get_model("audit", "AuditLog")
    db = schema_editor.connection.alias
    for old, new in mapping.items():
        AuditLog.objects.using(db).filter(event=old).update(event=new)


def forwards(apps, schema_editor):
    rename(apps, schema_editor, RENAMES)


def backwards(apps, schema_editor):
    rename(apps, schema_editor, {new: old for old, new in RENAMES.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_rename_table"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
