"""Member-isolation cases of the meters app (collected by tests/test_member_isolation.py)."""

from django.urls import reverse

from apps.accounts.testing import IsolationCase


def _meter_url(member):
    from apps.meters.tests.factories import MeterFactory

    return reverse("meters:meter_detail", args=[MeterFactory(member=member).pk])


ISOLATION_CASES = [IsolationCase("meters:meter_detail", _meter_url)]
