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


class Journey(models.Model):
    """A journey version: steps as one JSON document (SPEC section 6), and its lifecycle."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        LIVE = "live", "Live"
        PAUSED = "paused", "Paused"
        STOPPED = "stopped", "Stopped"
        CLOSED = "closed", "Closed"

    class Reentry(models.TextChoices):
        NEVER = "never", "Never: a profile goes through once"
        AFTER_EXIT = "after_exit", "After exit: again once its previous run ended"
        ALWAYS = "always", "Always: every matching event starts a run"

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="journeys")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    entry_event = models.CharField(max_length=200, help_text="The event name that starts a run.")
    reentry = models.CharField(max_length=12, choices=Reentry.choices, default=Reentry.AFTER_EXIT)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    version = models.PositiveIntegerField(default=1)
    previous = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="next_version",
        help_text="The version this draft replaces when published.",
    )  # fmt: skip
    steps = models.JSONField(default=list, blank=True)
    start = models.CharField(max_length=100, blank=True, default="")
    # The actions its steps call, kept in step with `steps`: "used in" and the protection of live journeys.
    actions = models.ManyToManyField("actions.Action", blank=True, related_name="journeys")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "-version"]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"
