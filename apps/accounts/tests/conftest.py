"""Make the shared account fixtures available when only apps/accounts is collected.

In a whole-suite run tests/conftest.py has already registered them as plugins; do not define
them a second time then."""

import sys

if "tests.fixtures.core" not in sys.modules:
    from tests.fixtures.core import *  # noqa: F403
