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
    help = (
        "Load demo data (idempotent): organizations acme and globex, a user of each role, and in acme a demo "
        "SMS action, a live journey that uses it and an API key to send events with."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--base-url", default="", help="Where the web server listens, for the printed commands.")

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
        from journeys.demo import seed_demo_journey

        raw_key = seed_demo_journey(organizations["acme"])
        host = options.get("base_url") or "http://127.0.0.1:8000"
        self.stdout.write(
            "\nDemo: a live 'Abandoned cart' journey in acme texts and emails customers whose cart is over 50.\n"
            "Send it an event (the demo API key is in var/demo-api-key):\n\n"
            f"  curl -s -X POST {host}/api/v1/orgs/acme/events/ -H 'Authorization: Bearer {raw_key}' \\\n"
            '       -H \'Content-Type: application/json\' -d \'{"name": "cart_abandoned", "profile_id": '
            '"cust-42", "profile": {"first_name": "Ada", "phone": "+33600000000", "email": "ada@example.com"}, '
            '"data": {"total": 120.5}}\'\n\n'
            "Then watch the run (about 5 s later the receiver prints the SMS call, then the email):\n"
            f"  {host}/admin/journeys/journeyrun/\n"
        )
