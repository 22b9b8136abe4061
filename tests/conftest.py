"""Project-wide fixtures. Integration-specific fixtures live in tests/fixtures/<area>.py."""

pytest_plugins = [
    "tests.fixtures.browser",
    "tests.fixtures.core",
    "tests.fixtures.chain",
    "tests.fixtures.mqtt",
]
