"""factory_boy factories for accounts. Exposed as pytest fixtures in tests/fixtures/core.py."""

from __future__ import annotations

import factory
from django.contrib.auth.models import Group

from apps.accounts.models import Member, Role, User

DEFAULT_PASSWORD = "correct-horse-battery-staple"


def _roles_hook(default: tuple[str, ...]):
    """post_generation `roles=[...]`: put the user in those groups (default per factory)."""

    @factory.post_generation
    def roles(obj, create, extracted, **kwargs):
        if not create:
            return
        for role in extracted if extracted is not None else default:
            group, _ = Group.objects.get_or_create(name=Role(role).value)
            obj.groups.add(group)

    return roles


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n:05d}@example.test")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    is_active = True

    @factory.post_generation
    def password(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy hook
        obj.set_password(extracted or DEFAULT_PASSWORD)
        if create:
            obj.save(update_fields=["password"])

    roles = _roles_hook(())


class MemberUserFactory(UserFactory):
    roles = _roles_hook((Role.MEMBER,))


class StaffUserFactory(UserFactory):
    email = factory.Sequence(lambda n: f"staff{n:05d}@example.test")
    is_staff = True
    roles = _roles_hook((Role.STAFF,))


class AuditorUserFactory(UserFactory):
    email = factory.Sequence(lambda n: f"auditor{n:05d}@example.test")
    is_staff = True
    roles = _roles_hook((Role.AUDITOR,))


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    user = factory.SubFactory(MemberUserFactory)
    membership_number = factory.Sequence(lambda n: f"T{n:05d}")
    legal_name = factory.Faker("name")
    kind = Member.Kind.PROSUMER
    status = Member.Status.ACTIVE
    street = factory.Faker("street_address", locale="de_DE")
    postal_code = factory.Faker("postcode", locale="de_DE")
    city = factory.Faker("city", locale="de_DE")
    country = "DE"
