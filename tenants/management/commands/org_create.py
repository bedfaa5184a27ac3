from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.services import organization_create


class Command(BaseCommand):
    help = 'Create an organization: manage.py org_create acme "Acme Inc"'

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("name")
        parser.add_argument("--allow-http", action="store_true", help="Let its actions call http:// URLs.")

    def handle(self, slug: str, name: str, allow_http: bool, **options) -> None:
        try:
            organization = organization_create(slug=slug, name=name, allow_http=allow_http)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        self.stdout.write(self.style.SUCCESS(f"Created organization {organization.slug} ({organization.name})."))
