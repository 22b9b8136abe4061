"""Project-wide pytest set-up, loaded for any subset of the suite (`pytest apps/market` too).

Integration-specific fixtures live in tests/fixtures/<area>.py and are registered here once.
"""

pytest_plugins = [
    "tests.fixtures.browser",
    "tests.fixtures.core",
    "tests.fixtures.chain",
    "tests.fixtures.mqtt",
]
