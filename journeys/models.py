from django.db import models
from django.db.models import Q
from django.utils import timezone


class Profile(models.Model):
    """A customer as external systems name them (`external_id`), with attributes events merge into."""

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="profiles")
    external_id = models.CharField(max_length=200)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["external_id"]
        constraints = [models.UniqueConstraint(fields=["organization", "external_id"], name="unique_profile_per_org")]

    def __str__(self) -> str:
        return self.external_id


class Event(models.Model):
    """An event as received; stored once per client `id`. The engine marks it processed."""

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="events")
    client_id = models.CharField(max_length=200, blank=True, default="", help_text="The sender's id, for idempotency.")
    name = models.CharField(max_length=200)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="events")
    data = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "client_id"], condition=~Q(client_id=""), name="unique_event_client_id"
            )
        ]
        indexes = [
            models.Index(fields=["organization", "name", "received_at"], name="event_by_name"),
            models.Index(fields=["processed_at"], name="event_unprocessed", condition=Q(processed_at=None)),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.profile})"
