"""Every navigation link a role sees reverses and answers 200 for that role: a link to a URL name
that does not exist, or to a page the role may not open, fails here."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from apps.portal.navigation import AUDITOR_LINKS, MEMBER_SECTIONS, STAFF_LINKS

pytestmark = pytest.mark.django_db

NAV = re.compile(r'<nav class="sidenav"[^>]*>(.*?)</nav>', re.S)
HREF = re.compile(r'<a href="([^"]+)"')


def _nav_links(client) -> list[str]:
    response = client.get(reverse("portal:dashboard"))
    assert response.status_code == 200
    (nav,) = NAV.findall(response.content.decode())
    return HREF.findall(nav)


def _assert_all_open(client, links: list[str]) -> None:
    answers = {url: client.get(url).status_code for url in links}
    assert answers == dict.fromkeys(links, 200)


def test_every_member_link_opens_for_a_member(member_client):
    links = _nav_links(member_client)
    assert links == [reverse(section.url_name) for section in MEMBER_SECTIONS]
    _assert_all_open(member_client, links)


def test_every_staff_link_opens_for_staff(staff_client):
    links = _nav_links(staff_client)
    assert links == [reverse(link.url_name) for link in STAFF_LINKS]
    _assert_all_open(staff_client, links)


def test_every_auditor_link_opens_for_an_auditor(auditor_client, auditor_user):
    links = _nav_links(auditor_client)
    expected = [reverse("portal:auditor")] + [reverse(link.url_name) for link in AUDITOR_LINKS]
    if auditor_user.is_staff:  # auditors use the read-only admin, so they see the staff links
        expected += [reverse(link.url_name) for link in STAFF_LINKS]
    assert links == expected
    _assert_all_open(auditor_client, links)


def test_the_auditor_area_lists_the_auditor_links(auditor_client):
    html = auditor_client.get(reverse("portal:auditor")).content.decode()
    for link in AUDITOR_LINKS:
        assert f'href="{reverse(link.url_name)}"' in html, link.label
