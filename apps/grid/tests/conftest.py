"""Make the shared account fixtures available when only apps/grid is collected."""

from tests.fixtures.core import *  # noqa: F403
