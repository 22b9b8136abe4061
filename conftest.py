"""Project-wide pytest set-up, loaded for any subset of the suite (`pytest apps/market` too).

Integration-specific fixtures live in tests/fixtures/<area>.py and are registered here once.
"""

import pytest

pytest_plugins = [
    "tests.fixtures.browser",
    "tests.fixtures.core",
    "tests.fixtures.database",
    "tests.fixtures.chain",
    "tests.fixtures.mqtt",
]


@pytest.hookimpl(trylast=True)  # after pytest-django has put the database tests in order
def pytest_collection_modifyitems(items):
    """Tests marked `long` (minutes in processes of their own, no test database) run first: under
    pytest-xdist a worker takes them at once while the other works through the rest, instead of
    one worker finishing alone with them at the end.

    With the read replica configured (the test settings make `replica` a TEST MIRROR of
    default), every database test may use it: reads inside `replica_reads()` outside a
    transaction go there (apps/core/replica.py), as in production."""
    from django.conf import settings

    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable
    if "replica" not in settings.DATABASES:
        return
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker is None:
            # pytest-django makes tests using these fixtures transactional without a marker
            if not {"transactional_db", "live_server"} & set(getattr(item, "fixturenames", ())):
                continue
            args, kwargs = (), {"transaction": True}
        else:
            args, kwargs = marker.args, dict(marker.kwargs)
        if len(args) > 2 or kwargs.get("databases") == "__all__":
            continue  # databases given positionally, or already every database
        databases = list(kwargs.get("databases") or ["default"])
        if "replica" not in databases:
            kwargs["databases"] = [*databases, "replica"]
            item.add_marker(pytest.mark.django_db(*args, **kwargs), append=False)


@pytest.fixture(autouse=True)
def _forget_partitions_after_each_test():
    """pytest-django rolls each test's transaction back, also partitions created in it (and
    `django_capture_on_commit_callbacks(execute=True)` runs the on-commit hook that caches them
    even so): the process cache of known partitions must not outlive the test."""
    yield
    from apps.meters.readings.partitions import partitions_forget

    partitions_forget()
