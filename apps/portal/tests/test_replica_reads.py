"""The read replica (apps/core/replica.py) on a second connection to the test database (the test
settings make `replica` a TEST MIRROR of default): the pages that opt in read from it, every
other read and every write stays on the primary, and a transaction always reads its own
writes. The dashboard's readings through the replica:
apps/meters/tests/test_replica_dashboard.py."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, router, transaction
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Member
from apps.accounts.tests.factories import MemberFactory
from apps.core.replica import read_alias, replica_reads
from apps.market.tests.factories import make_issued_statement

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


def test_a_members_statements_page_reads_from_the_replica(client):
    member = MemberFactory()
    statement = make_issued_statement(member)
    client.force_login(member.user)
    with CaptureQueriesContext(connections["replica"]) as on_replica:
        response = client.get("/market/statements/")
    assert response.status_code == 200
    assert statement.number in response.content.decode()
    assert any("market_statement" in q["sql"] for q in on_replica.captured_queries)


def test_the_trading_page_reads_the_primary_only(client):
    """Members place orders and change preferences there, then see them: no replica lag."""
    member = MemberFactory()
    client.force_login(member.user)
    with CaptureQueriesContext(connections["replica"]) as on_replica:
        assert client.get("/market/").status_code == 200
    assert on_replica.captured_queries == []


def test_inside_a_transaction_reads_stay_on_the_primary_and_see_its_own_writes():
    with transaction.atomic():
        member = MemberFactory()
        with replica_reads():
            assert read_alias() == "default"
            assert router.db_for_read(Member) == "default"
            assert Member.objects.filter(pk=member.pk).exists()


def test_outside_replica_reads_and_for_writes_the_primary_is_used():
    assert read_alias() == "default"
    assert router.db_for_read(Member) == "default"
    with replica_reads():
        assert read_alias() == "replica"
        assert router.db_for_read(Member) == "replica"
        assert router.db_for_write(Member) == "default"
        member = MemberFactory()  # a write inside the block
    assert member._state.db == "default"
    assert read_alias() == "default"


def test_the_replica_is_never_migrated():
    assert router.allow_migrate("replica", "accounts") is False
    assert router.allow_migrate("default", "accounts") is True


def test_another_threads_replica_connection_reads_the_test_database():
    """A live server runs in its own thread, with connections of its own: its replica reads the
    same test database as the test's primary, not the development database."""
    member = MemberFactory()
    seen: dict = {}

    def other_thread():
        try:
            with replica_reads():
                seen["alias"] = read_alias()
                seen["found"] = Member.objects.filter(pk=member.pk).exists()
            seen["name"] = connections["replica"].settings_dict["NAME"]
        finally:
            connections.close_all()

    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join(timeout=60)
    assert seen == {
        "alias": "replica",
        "found": True,
        "name": connections["default"].settings_dict["NAME"],
    }
