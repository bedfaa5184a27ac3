"""Writes for profiles and events (SPEC section 4)."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from journeys.models import Event, Profile
from tenants.models import Organization


@transaction.atomic
def profile_put(*, organization: Organization, external_id: str, attributes: dict[str, Any]) -> tuple[Profile, bool]:
    """Create the profile or replace its attributes; (profile, created)."""
    profile, created = Profile.objects.select_for_update().get_or_create(
        organization=organization, external_id=external_id, defaults={"attributes": attributes}
    )
    if not created:
        profile.attributes = attributes
        profile.save(update_fields=["attributes", "updated_at"])
    return profile, created


@transaction.atomic
def events_ingest(*, organization: Organization, events: list[dict[str, Any]]) -> dict[str, int]:
    """Store validated events at once: profiles created or merged, a client `id` stored only once.

    Returns {"accepted": stored now, "duplicates": ids already stored}. Nothing is stored unless
    everything is: the caller answers 202 only after this commits.
    """
    now = timezone.now()
    external_ids = list(dict.fromkeys(e["profile_id"] for e in events))
    Profile.objects.bulk_create(
        [Profile(organization=organization, external_id=x, created_at=now) for x in external_ids],
        ignore_conflicts=True,
    )
    # Locked in a stable order, so that concurrent batches merging the same profiles cannot deadlock.
    profiles = {
        p.external_id: p
        for p in Profile.objects.select_for_update()
        .filter(organization=organization, external_id__in=external_ids)
        .order_by("pk")
    }
    merged = set()
    for event in events:
        if event.get("profile"):
            profile = profiles[event["profile_id"]]
            profile.attributes = {**profile.attributes, **event["profile"]}
            merged.add(profile.external_id)
    if merged:
        for external_id in merged:
            profiles[external_id].updated_at = now
        Profile.objects.bulk_update([profiles[x] for x in merged], ["attributes", "updated_at"])

    client_ids = [e["id"] for e in events if e.get("id")]
    seen = set(
        Event.objects.filter(organization=organization, client_id__in=client_ids).values_list("client_id", flat=True)
    )
    rows, duplicates = [], 0
    for event in events:
        client_id = event.get("id") or ""
        if client_id and client_id in seen:
            duplicates += 1
            continue
        if client_id:
            seen.add(client_id)
        rows.append(
            Event(
                organization=organization, client_id=client_id, name=event["name"],
                profile=profiles[event["profile_id"]], data=event.get("data") or {},
                occurred_at=event.get("occurred_at") or now, received_at=now,
            )
        )  # fmt: skip
    # A concurrent request may store the same id first: the constraint keeps one, ignore_conflicts the rest.
    Event.objects.bulk_create(rows, ignore_conflicts=True)
    return {"accepted": len(rows), "duplicates": duplicates}
