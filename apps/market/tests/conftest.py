"""Make the shared fixtures (accounts, local chain) available when only apps/market is collected.

In a whole-suite run tests/conftest.py has already registered them as plugins (at start-up);
importing them again here would define a second session-scoped anvil node, so skip then.
"""

import sys

if "tests.fixtures.chain" not in sys.modules:
    from tests.fixtures.chain import *  # noqa: F403
if "tests.fixtures.core" not in sys.modules:
    from tests.fixtures.core import *  # noqa: F403
