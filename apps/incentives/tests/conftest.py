"""Register the project's chain fixtures (anvil, chain) when only this app's tests are collected
(tests/conftest.py registers them for the whole suite)."""


def pytest_configure(config):
    if not config.pluginmanager.has_plugin("tests.fixtures.chain"):
        config.pluginmanager.import_plugin("tests.fixtures.chain")
