"""Make the shared fixtures (accounts, local chain) available when only apps/market is collected
(tests/conftest.py registers them for the whole suite)."""

from tests.fixtures.chain import *  # noqa: F403
from tests.fixtures.core import *  # noqa: F403
