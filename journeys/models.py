import uuid

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
        CLOSED = "closed", "Archived"  # "closed" in the API, as before; "Archived" to people

    class Reentry(models.TextChoices):
        NEVER = "never", "Never: a profile goes through once"
        AFTER_EXIT = "after_exit", "After exit: again once its previous run ended"
        ALWAYS = "always", "Always: every matching event starts a run"

    # The one table of transitions: which states each verb may leave. Services decide with it,
    # the admin's buttons ask it.
    ALLOWED_FROM = {
        "publish": (Status.DRAFT,),
        "pause": (Status.LIVE,),
        "resume": (Status.PAUSED,),
        "stop": (Status.LIVE, Status.PAUSED),
        "close": (Status.DRAFT, Status.STOPPED),
        "new-version": (Status.LIVE, Status.PAUSED, Status.STOPPED),
    }

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
    # Where each step sits on the canvas, {key: {"x": ..., "y": ...}}: for people only, the engine never reads it.
    layout = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name", "-version"]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    def allows(self, verb: str) -> bool:
        """Whether this journey's status allows `verb` (a key of ALLOWED_FROM)."""
        return self.status in self.ALLOWED_FROM[verb]


class JourneyRun(models.Model):
    """One profile's way through one journey version; a row the workers move step by step (SPEC section 8)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"  # its current step is due (due_at) or waits for its call (due_at empty)
        WAITING = "waiting", "Waiting"  # in a wait step until due_at
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        STOPPED = "stopped", "Stopped"

    OPEN = (Status.ACTIVE, Status.WAITING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="journey_runs")
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="runs")
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="runs")
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    current_step = models.CharField(max_length=100)
    current_step_run = models.ForeignKey(
        "StepRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The step run still open: a wait, or an action waiting for its call.",
    )  # fmt: skip
    due_at = models.DateTimeField(null=True, blank=True)  # when a worker should run the current step
    claimed_until = models.DateTimeField(null=True, blank=True)  # a worker's lease while it runs steps
    steps_done = models.PositiveIntegerField(default=0)  # the sequence number of its last step run
    # What its expressions see as steps.<key>: status, response, error_response.
    context = models.JSONField(default=dict, blank=True)
    # Holds the reentry rule: "<journey>:<profile>" is unique while a profile may not enter again.
    exclusive_key = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["status", "due_at"], name="run_due"),
            models.Index(fields=["organization", "journey", "status"], name="run_by_journey"),
            models.Index(fields=["journey", "profile"], name="run_by_profile"),
        ]

    def __str__(self) -> str:
        return f"{self.journey} for {self.profile.external_id} ({self.status})"


class StepRun(models.Model):
    """One step of a run, executed once: what it decided and, for an action, its invocation."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"  # an action waiting for its call
        WAITING = "waiting", "Waiting"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        STOPPED = "stopped", "Stopped"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="step_runs")
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="step_runs")
    run = models.ForeignKey(JourneyRun, on_delete=models.CASCADE, related_name="step_runs")
    sequence = models.PositiveIntegerField()
    step_key = models.CharField(max_length=100)
    step_type = models.CharField(max_length=10)
    status = models.CharField(max_length=10, choices=Status.choices)
    outcome = models.CharField(max_length=40, blank=True, default="", help_text="The call's outcome or the branch.")
    next_step = models.CharField(max_length=100, blank=True, default="")
    invocation = models.ForeignKey(
        "actions.Invocation", null=True, blank=True, on_delete=models.SET_NULL, related_name="step_runs"
    )
    wake_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    entered_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "sequence"]
        constraints = [models.UniqueConstraint(fields=["run", "sequence"], name="one_step_run_per_sequence")]
        indexes = [models.Index(fields=["journey", "step_key", "status"], name="step_run_report")]

    def __str__(self) -> str:
        return f"{self.sequence}. {self.step_key} ({self.status})"
