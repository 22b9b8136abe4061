"""Make the shared account fixtures available when only apps/accounts is collected
(tests/conftest.py registers them for the whole suite)."""

from tests.fixtures.core import *  # noqa: F403
