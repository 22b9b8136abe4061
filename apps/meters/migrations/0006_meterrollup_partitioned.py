"""Partition meters_meterrollup by month of period_start, and index period_start.

Hourly rollups per meter grow by 10,000 meters × 24 h ≈ 88 M rows a year; the refresh deletes
and re-inserts whole hours (`period_start = ANY(...)`), which without an index on period_start
scanned the whole table. Now: monthly partitions (created ahead with the reading partitions,
apps/meters/readings/partitions.py) and a (period_start, granularity) index, so a refresh touches one
month's index. The redundant meter_id index (the primary key starts with meter_id) is not
recreated. Existing rows are copied over.
"""

from django.db import migrations, models

_COLUMNS = """
    meter_id bigint NOT NULL,
    granularity varchar(4) NOT NULL,
    period_start timestamptz NOT NULL,
    import_wh bigint NOT NULL,
    export_wh bigint NOT NULL,
    intervals integer NOT NULL,
    estimated_intervals integer NOT NULL,
    CONSTRAINT meters_meterrollup_pkey PRIMARY KEY (meter_id, granularity, period_start),
    CONSTRAINT meters_meterrollup_intervals_check CHECK (intervals >= 0),
    CONSTRAINT meters_meterrollup_estimated_intervals_check CHECK (estimated_intervals >= 0)
"""
_FREE_NAMES = """
ALTER TABLE {table} RENAME CONSTRAINT meters_meterrollup_pkey TO {table}_pkey;
ALTER TABLE {table} DROP CONSTRAINT IF EXISTS meters_meterrollup_intervals_check,
    DROP CONSTRAINT IF EXISTS meters_meterrollup_estimated_intervals_check;
"""

SQL = (
    "ALTER TABLE meters_meterrollup RENAME TO meters_meterrollup_old;"
    + _FREE_NAMES.format(table="meters_meterrollup_old")
    + f"CREATE TABLE meters_meterrollup ({_COLUMNS}) PARTITION BY RANGE (period_start);"
    + "CREATE INDEX meters_meterroll_period ON meters_meterrollup (period_start, granularity);"
)

REVERSE_SQL = (
    "ALTER TABLE meters_meterrollup RENAME TO meters_meterrollup_part;"  # noqa: S608 - constants
    + _FREE_NAMES.format(table="meters_meterrollup_part")
    + f"CREATE TABLE meters_meterrollup ({_COLUMNS});"
    + "CREATE INDEX meters_meterrollup_meter_id_74b0b1bf ON meters_meterrollup (meter_id);"
    + "INSERT INTO meters_meterrollup SELECT meter_id, granularity, period_start, import_wh, "
    "export_wh, intervals, estimated_intervals FROM meters_meterrollup_part;"
    + "DROP TABLE meters_meterrollup_part;"
)


def copy_rows(apps, schema_editor):
    from datetime import UTC, datetime, timedelta

    from apps.meters.readings.partitions import partitions_ensure

    conn = schema_editor.connection
    now = datetime.now(tz=UTC)
    with conn.cursor() as cursor:
        cursor.execute("SELECT min(period_start), max(period_start) FROM meters_meterrollup_old")
        lo, hi = cursor.fetchone()
    start = min(lo or now, now - timedelta(days=62))
    end = max(hi or now, now + timedelta(days=7))
    partitions_ensure(start=start, end=end, tables=["meters_meterrollup"], connection=conn)
    with conn.cursor() as cursor:
        cursor.execute(
            "INSERT INTO meters_meterrollup (meter_id, granularity, period_start, import_wh, "
            "export_wh, intervals, estimated_intervals) SELECT meter_id, granularity, "
            "period_start, import_wh, export_wh, intervals, estimated_intervals "
            "FROM meters_meterrollup_old"
        )
        cursor.execute("DROP TABLE meters_meterrollup_old")


class Migration(migrations.Migration):
    dependencies = [("meters", "0005_meter_fillfactor")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="meterrollup",
                    name="meter",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="rollups",
                        to="meters.meter",
                    ),
                ),
                migrations.AddIndex(
                    model_name="meterrollup",
                    index=models.Index(
                        fields=["period_start", "granularity"], name="meters_meterroll_period"
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(SQL, reverse_sql=REVERSE_SQL),
                migrations.RunPython(copy_rows, migrations.RunPython.noop),
            ],
        )
    ]
