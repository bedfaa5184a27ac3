from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from tenants.models import Membership, Organization
from tenants.roles import Role

DEMO_USERS = [
    # (organization, username, role)
    ("acme", "admin", Role.ADMIN),
    ("acme", "tech", Role.TECHNICAL),
    ("acme", "marketer", Role.MARKETER),
    ("acme", "viewer", Role.VIEWER),
    ("globex", "globex_admin", Role.ADMIN),
]
DEMO_ORGANIZATIONS = {"acme": "Acme Inc", "globex": "Globex Corporation"}


def demo_password(username: str) -> str:
    return f"{username}-demo-pass"


class Command(BaseCommand):
    help = "Load demo data (idempotent): organizations acme and globex and a user of each role."

    @transaction.atomic
    def handle(self, **options) -> None:
        User = get_user_model()
        organizations = {
            slug: Organization.objects.update_or_create(slug=slug, defaults={"name": name})[0]
            for slug, name in DEMO_ORGANIZATIONS.items()
        }
        self.stdout.write("Demo logins (development only):")
        for slug, username, role in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(demo_password(username))
            user.save()
            Membership.objects.update_or_create(organization=organizations[slug], user=user, defaults={"role": role})
            self.stdout.write(f"  {username:<14} {demo_password(username):<24} {role} in {slug}")
