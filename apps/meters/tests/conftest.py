"""Make the shared fixtures available when only apps/meters is collected
(tests/conftest.py registers them for the whole suite)."""

from tests.fixtures.core import *  # noqa: F403
from tests.fixtures.mqtt import *  # noqa: F403
