"""Profiles in bulk: up to 10,000 created or merged in one request, with a few queries whatever the count.

The rules are those of events (journeys.services.events_ingest): attributes merge key by key over
what the profile has, later items over earlier ones, rows locked in primary-key order so that
concurrent batches cannot deadlock; one profile may be as large as one event (journeys.api.events).
"""

import json
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from config.common.db import update_rows
from config.common.serializers import StrictSerializer
from journeys.models import Profile
from tenants.models import Organization

MAX_PROFILES = 10_000
# journeys.api.events.MAX_EVENT_BYTES: a service may not import a door (make lint), a test keeps the two equal.
MAX_PROFILE_BYTES = 64 * 1024
BATCH_SIZE = 2000


class BulkProfileSerializer(StrictSerializer):
    external_id = serializers.CharField(max_length=200, help_text=gettext_lazy("The profile's id in your systems."))
    attributes = serializers.DictField(
        required=False, default=dict, help_text=gettext_lazy("Attributes to merge into the profile.")
    )


def _flat(prefix: str, problems: Any) -> dict[str, list[str]]:
    """DRF's nested problems as {"profiles[3].external_id": [...]}, the paths the journey checks use."""
    if isinstance(problems, dict):
        flat: dict[str, list[str]] = {}
        for name, inner in problems.items():
            flat.update(_flat(f"{prefix}.{name}" if name != "non_field_errors" else prefix, inner))
        return flat
    if isinstance(problems, list) and problems and all(isinstance(p, str) for p in problems):
        return {prefix: [str(p) for p in problems]}
    if isinstance(problems, list):
        flat = {}
        for inner in problems:
            flat.update(_flat(prefix, inner))
        return flat
    return {prefix: [str(problems)]}


def profiles_check(items: Any) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """(the valid profiles, every problem by path): a request is taken whole or not at all."""
    if not isinstance(items, list) or not items:
        return [], {"profiles": [_("Send a list of profiles.")]}
    if len(items) > MAX_PROFILES:
        return [], {"profiles": [_("At most %(max)s profiles per request.") % {"max": f"{MAX_PROFILES:,}"}]}
    errors: dict[str, list[str]] = {}
    for index, item in enumerate(items):
        if isinstance(item, dict) and len(json.dumps(item)) > MAX_PROFILE_BYTES:
            errors[f"profiles[{index}]"] = [_("is larger than 64 KB.")]
    # One list serializer, not one per profile: building serializers costs more than checking them.
    serializer = BulkProfileSerializer(data=items, many=True)
    if not serializer.is_valid():
        found = serializer.errors  # {index: problems} or a list aligned with the items
        for index, problems in found.items() if isinstance(found, dict) else enumerate(found):
            if problems and f"profiles[{index}]" not in errors:
                errors.update(_flat(f"profiles[{index}]", problems))
    if errors:
        return [], errors
    return serializer.validated_data, {}


@transaction.atomic
def profiles_bulk_upsert(*, organization: Organization, profiles: list[dict[str, Any]]) -> dict[str, int]:
    """Create the profiles that are new and merge attributes into the others; {"created": n, "updated": m}.

    Sending the same list again creates nothing: every profile is found by its external id.
    """
    now = timezone.now()
    wanted: dict[str, dict[str, Any]] = {}
    for item in profiles:  # the same id twice in a list merges in order, as events do
        external_id = item["external_id"]
        wanted[external_id] = {**wanted.get(external_id, {}), **(item.get("attributes") or {})}
    found = {
        p.external_id: p
        for p in Profile.objects.select_for_update()
        .filter(organization=organization, external_id__in=list(wanted))
        .order_by("pk")
        .only("pk", "external_id", "attributes")
    }
    missing = [x for x in wanted if x not in found]
    Profile.objects.bulk_create(
        [Profile(organization=organization, external_id=x, attributes=wanted[x], created_at=now) for x in missing],
        ignore_conflicts=True,  # a concurrent request may create one first: merged into below
        batch_size=BATCH_SIZE,
    )
    if missing:
        raced = (
            Profile.objects.select_for_update()
            .filter(organization=organization, external_id__in=missing)
            .exclude(created_at=now)
            .order_by("pk")
            .only("pk", "external_id", "attributes")
        )
        found.update((p.external_id, p) for p in raced)
    changed = []
    for external_id, profile in found.items():
        merged = (
            {**profile.attributes, **wanted[external_id]}
            if isinstance(profile.attributes, dict)
            else wanted[external_id]
        )
        if merged != profile.attributes:
            profile.attributes, profile.updated_at = merged, now
            changed.append(profile)
    update_rows(changed, ["attributes", "updated_at"])
    return {"created": len(wanted) - len(found), "updated": len(found)}
