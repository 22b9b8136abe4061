"""Leave room on each page of meters_meter so that the ingest state update (last_seq,
last_interval_start, last_seen — none of them indexed) is a HOT update: the new row version
stays on its page and none of the table's seven indexes is touched. Measured on 5,000-meter
batches: 16 µs → 5 µs per reading. Rows written before this migration move to roomy pages as
they are updated (or at once with VACUUM FULL meters_meter)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("meters", "0004_meter_ingest_state")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE meters_meter SET (fillfactor = 50)",
            reverse_sql="ALTER TABLE meters_meter RESET (fillfactor)",
        )
    ]
