import contextlib
import os
from collections.abc import Iterator

from django.apps import apps
from django.core import serializers
from django.core.management.base import BaseCommand, CommandError
from django.db import models

from config.encryption import secrets_in_clear
from tenants.models import Organization


def _path_to_organization(model: type[models.Model]) -> str | None:
    """The lookup from `model` to its organization: its own foreign key, or its parent's (an invocation's
    attempts); None for rows that belong to no organization (users, counters)."""
    keys = [field for field in model._meta.concrete_fields if isinstance(field, models.ForeignKey)]
    for field in keys:
        if field.related_model is Organization:
            return field.name
    for field in keys:
        for parent_field in field.related_model._meta.concrete_fields:
            if isinstance(parent_field, models.ForeignKey) and parent_field.related_model is Organization:
                return f"{field.name}__{parent_field.name}"
    return None


def organization_objects(organization: Organization) -> Iterator[models.Model]:
    """The organization and every row that belongs to it, in an order loaddata accepts."""
    yield organization
    app_list = [(config, None) for config in apps.get_app_configs()]
    for model in serializers.sort_dependencies(app_list, allow_cycles=True):
        if model is Organization or model._meta.proxy:
            continue
        path = _path_to_organization(model)
        if path is not None:
            yield from model._default_manager.filter(**{path: organization}).order_by("pk").iterator()


class Command(BaseCommand):
    help = (
        "Export one organization (its members, API keys as hashes, actions, secret values, email settings, "
        "journeys, profiles, events, runs and invocations) as a fixture for loaddata. Secrets are written "
        "as ciphertext under the first key of FIELD_ENCRYPTION_KEYS, as dumpdata writes them; with "
        "--with-secrets they are written in clear, for an installation with other keys. Users are not "
        "exported: the memberships name them by id."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="The organization's slug.")
        parser.add_argument(
            "--with-secrets",
            action="store_true",
            help="Write credentials, secret values, the SMTP password and signing secrets in clear.",
        )
        parser.add_argument("--format", default="json", help="A serialization format: json (default), xml, yaml.")
        parser.add_argument("--indent", type=int, default=None)
        parser.add_argument("-o", "--output", help="A file to write (created readable by its owner only).")

    def handle(self, *, slug: str, with_secrets: bool, format: str, indent: int | None, output: str | None, **_):
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            raise CommandError(f"No organization has the slug {slug!r}.")
        if format not in serializers.get_serializer_formats():
            raise CommandError(f"Unknown serialization format: {format}")
        reveal = secrets_in_clear() if with_secrets else contextlib.nullcontext()
        with self._open(output) as stream, reveal:
            serializers.serialize(format, organization_objects(organization), indent=indent, stream=stream)
        if with_secrets:
            self.stderr.write("The export holds the organization's secrets in clear: keep it as you would the keys.")

    @contextlib.contextmanager
    def _open(self, output: str | None) -> Iterator:
        if output is None:
            self.stdout.ending = None  # the serializer writes pieces; a newline after each would corrupt them
            yield self.stdout
            return
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "w", encoding="utf-8") as stream:
            yield stream
