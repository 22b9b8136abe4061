"""The OpenADR processes log at the configured level (LOG_LEVEL), openleadr included: with
warnings only, the VTN does not log every oadrPoll of every VEN."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture
def root_at_warning():
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)
    yield
    root.setLevel(level)


def test_openleadr_follows_the_configured_level(root_at_warning):
    import apps.grid.openadr_vtn  # noqa: F401 - imports openleadr, which sets its own level

    openleadr = logging.getLogger("openleadr")
    assert not openleadr.isEnabledFor(logging.INFO)
    assert openleadr.isEnabledFor(logging.WARNING)
