"""Project-wide pytest set-up, loaded for any subset of the suite (`pytest apps/market` too).

Integration-specific fixtures live in tests/fixtures/<area>.py and are registered here once.
"""

import pytest

pytest_plugins = [
    "tests.fixtures.browser",
    "tests.fixtures.core",
    "tests.fixtures.chain",
    "tests.fixtures.mqtt",
]


@pytest.fixture(autouse=True)
def _forget_partitions_after_each_test():
    """pytest-django rolls each test's transaction back, also partitions created in it (and
    `django_capture_on_commit_callbacks(execute=True)` runs the on-commit hook that caches them
    even so): the process cache of known partitions must not outlive the test."""
    yield
    from apps.meters.readings.partitions import partitions_forget

    partitions_forget()
