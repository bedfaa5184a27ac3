from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.models import Organization
from tenants.roles import Role
from tenants.services import membership_add


class Command(BaseCommand):
    help = "Add a user (created if needed) to an organization: manage.py member_add acme alice --role technical"

    def add_arguments(self, parser):
        parser.add_argument("organization", help="The organization's slug.")
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--password", help="Set the user's password (a new user without one cannot log in).")

    def handle(self, organization: str, username: str, role: str, password: str | None, **options) -> None:
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f'No organization "{organization}". Create it with org_create first.')
        try:
            membership = membership_add(
                organization=org, username=username, role=role, password=password, create_user=True
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(self.style.SUCCESS(f"{membership.user.username} is now {role} in {org.slug}."))
