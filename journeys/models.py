import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class Profile(models.Model):
    """A customer as external systems name them (`external_id`), with attributes events merge into."""

    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="profiles", verbose_name=_("organization")
    )
    external_id = models.CharField(_("external id"), max_length=200)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["external_id"]
        verbose_name = _("profile")
        verbose_name_plural = _("profiles")
        constraints = [models.UniqueConstraint(fields=["organization", "external_id"], name="unique_profile_per_org")]

    def __str__(self) -> str:
        return self.external_id


class Event(models.Model):
    """An event as received; stored once per client `id`. The engine marks it processed."""

    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="events", verbose_name=_("organization")
    )
    client_id = models.CharField(
        _("client id"), max_length=200, blank=True, default="", help_text=_("The sender's id, for idempotency.")
    )
    name = models.CharField(_("name"), max_length=200)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="events", verbose_name=_("profile"))
    data = models.JSONField(_("data"), default=dict, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name = _("event")
        verbose_name_plural = _("events")
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


class Segment(models.Model):
    """Profiles that match a CEL expression over `profile`: an audience, counted when asked."""

    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="segments", verbose_name=_("organization")
    )
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True, default="")
    expression = models.TextField(
        _("expression"), help_text=_('CEL over profile, e.g. profile.country == "FR" && profile.orders > 2')
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="unique_segment_name_per_org")]

    def __str__(self) -> str:
        return self.name


class Journey(models.Model):
    """A journey version: steps as one JSON document (SPEC section 6), and its lifecycle."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        LIVE = "live", _("Live")
        PAUSED = "paused", _("Paused")
        STOPPED = "stopped", _("Stopped")
        CLOSED = "closed", _("Archived")  # "closed" in the API, as before; "Archived" to people

    class Reentry(models.TextChoices):
        NEVER = "never", _("Never: a profile goes through once")
        AFTER_EXIT = "after_exit", _("After exit: again once its previous run ended")
        ALWAYS = "always", _("Always: every matching event starts a run")

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

    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="journeys", verbose_name=_("organization")
    )
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True, default="")
    entry_event = models.CharField(
        _("entry event"), max_length=200, blank=True, help_text=_("The event name that starts a run.")
    )
    # Or an audience: {"segment": id, "rate_per_s": 100, "start_at": ISO datetime or null, "repeat": "none"}.
    audience = models.JSONField(_("audience"), null=True, blank=True, default=None)
    reentry = models.CharField(_("reentry"), max_length=12, choices=Reentry.choices, default=Reentry.AFTER_EXIT)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    version = models.PositiveIntegerField(_("version"), default=1)
    previous = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="next_version",
        verbose_name=_("previous"), help_text=_("The version this draft replaces when published."),
    )  # fmt: skip
    steps = models.JSONField(_("steps"), default=list, blank=True)
    start = models.CharField(_("start"), max_length=100, blank=True, default="")
    # The actions its steps call, kept in step with `steps`: "used in" and the protection of live journeys.
    actions = models.ManyToManyField("actions.Action", blank=True, related_name="journeys", verbose_name=_("actions"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True)
    # Where each step sits on the canvas, {key: {"x": ..., "y": ...}}: for people only, the engine never reads it.
    layout = models.JSONField(_("layout"), default=dict, blank=True)
    max_run_days = models.PositiveIntegerField(
        _("longest run (days)"), default=91,
        help_text=_("A run still open this many days after it started ends as timed out (91, as Adobe's)."),
    )  # fmt: skip
    exit_events = models.JSONField(
        _("exit events"), default=list, blank=True,
        help_text=_("Event names that end a profile's open runs in this journey (its goal reached, say)."),
    )  # fmt: skip

    class Meta:
        ordering = ["name", "-version"]
        verbose_name = _("journey")
        verbose_name_plural = _("journeys")

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    def allows(self, verb: str) -> bool:
        """Whether this journey's status allows `verb` (a key of ALLOWED_FROM)."""
        return self.status in self.ALLOWED_FROM[verb]


class JourneyRun(models.Model):
    """One profile's way through one journey version; a row the workers move step by step (SPEC section 8)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")  # its current step is due (due_at) or waits for its call (due_at empty)
        WAITING = "waiting", _("Waiting")  # in a wait step until due_at
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")
        STOPPED = "stopped", _("Stopped")
        EXITED = "exited", _("Exited")  # an exit event arrived (exit_event)
        TIMED_OUT = "timed_out", _("Timed out")  # still open after the journey's max_run_days

    OPEN = (Status.ACTIVE, Status.WAITING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="journey_runs", verbose_name=_("organization")
    )
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="runs", verbose_name=_("journey"))
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="runs", verbose_name=_("profile"))
    event = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs", verbose_name=_("event")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    current_step = models.CharField(_("current step"), max_length=100)
    current_step_run = models.ForeignKey(
        "StepRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("current step run"),
        help_text=_("The step run still open: a wait, or an action waiting for its call."),
    )  # fmt: skip
    # when a worker should run the current step (for a wait_event step: when it times out)
    due_at = models.DateTimeField(_("due at"), null=True, blank=True)
    # In a wait_event step: the event name that resumes it; "" otherwise.
    awaiting_event = models.CharField(_("awaiting event"), max_length=200, blank=True, default="")
    # a worker's lease while it runs steps
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    steps_done = models.PositiveIntegerField(_("steps done"), default=0)  # the sequence number of its last step run
    # What its expressions see as steps.<key>: status, response, error_response.
    context = models.JSONField(_("context"), default=dict, blank=True)
    # Holds the reentry rule: "<journey>:<profile>" is unique while a profile may not enter again.
    exclusive_key = models.CharField(
        _("exclusive key"), max_length=64, null=True, blank=True, unique=True, editable=False
    )
    error = models.TextField(_("error"), blank=True, default="")
    exit_event = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="exited_runs",
        verbose_name=_("exit event"), help_text=_("The event that ended this run, for a run that exited."),
    )  # fmt: skip
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("journey run")
        verbose_name_plural = _("journey runs")
        indexes = [
            models.Index(fields=["status", "due_at"], name="run_due"),
            models.Index(fields=["organization", "journey", "status"], name="run_by_journey"),
            models.Index(fields=["journey", "profile"], name="run_by_profile"),
            models.Index(
                fields=["profile", "awaiting_event"], name="run_awaiting_event", condition=~Q(awaiting_event="")
            ),
        ]

    def __str__(self) -> str:
        return gettext("%(journey)s for %(profile)s (%(status)s)") % {
            "journey": self.journey, "profile": self.profile.external_id, "status": self.status,
        }  # fmt: skip


class AudienceRound(models.Model):
    """One entry of an audience journey's segment (once, or each day or week): every matching profile
    gets a run, at the journey's rate; `scanned_to` (a profile id) is how far it got, so it resumes."""

    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="+", verbose_name=_("organization")
    )
    journey = models.ForeignKey(
        Journey, on_delete=models.CASCADE, related_name="audience_rounds", verbose_name=_("journey")
    )
    scheduled_for = models.DateTimeField(_("scheduled for"))
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    total = models.PositiveIntegerField(_("total"), default=0, help_text=_("Matching profiles when it started."))
    entered = models.PositiveIntegerField(_("entered"), default=0)
    skipped = models.PositiveIntegerField(
        _("skipped"), default=0, help_text=_("Matching profiles its reentry rule kept out.")
    )
    scanned_to = models.BigIntegerField(_("scanned to"), default=0)

    class Meta:
        ordering = ["-scheduled_for"]
        verbose_name = _("audience round")
        verbose_name_plural = _("audience rounds")
        constraints = [models.UniqueConstraint(fields=["journey", "scheduled_for"], name="one_audience_round_per_time")]

    def __str__(self) -> str:
        return f"{self.journey} {self.scheduled_for:%Y-%m-%d %H:%M}"


class StepRun(models.Model):
    """One step of a run, executed once: what it decided and, for an action, its invocation."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")  # an action waiting for its call
        WAITING = "waiting", _("Waiting")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        STOPPED = "stopped", _("Stopped")
        CAPPED = "capped", _("Capped")  # a frequency cap held its call back (journeys.frequency_caps)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="step_runs", verbose_name=_("organization")
    )
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="step_runs", verbose_name=_("journey"))
    run = models.ForeignKey(JourneyRun, on_delete=models.CASCADE, related_name="step_runs", verbose_name=_("run"))
    sequence = models.PositiveIntegerField(_("sequence"))
    step_key = models.CharField(_("step key"), max_length=100)
    step_type = models.CharField(_("step type"), max_length=10)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    outcome = models.CharField(
        _("outcome"), max_length=40, blank=True, default="", help_text=_("The call's outcome or the branch.")
    )
    next_step = models.CharField(_("next step"), max_length=100, blank=True, default="")
    invocation = models.ForeignKey(
        "actions.Invocation", null=True, blank=True, on_delete=models.SET_NULL, related_name="step_runs",
        verbose_name=_("invocation"),
    )  # fmt: skip
    wake_at = models.DateTimeField(_("wake at"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True, default="")
    entered_at = models.DateTimeField(_("entered at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["run", "sequence"]
        verbose_name = _("step run")
        verbose_name_plural = _("step runs")
        constraints = [models.UniqueConstraint(fields=["run", "sequence"], name="one_step_run_per_sequence")]
        indexes = [models.Index(fields=["journey", "step_key", "status"], name="step_run_report")]

    def __str__(self) -> str:
        return f"{self.sequence}. {self.step_key} ({self.status})"


class FrequencyCap(models.Model):
    """At most `max_calls` calls of one category per profile in any `period_days`, across every journey.

    A category may have several caps of different periods (1 a day and 3 a week): each holds."""

    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="frequency_caps", verbose_name=_("organization")
    )
    category = models.CharField(
        _("category"), max_length=64, help_text=_("A category actions are tagged with, e.g. marketing-sms.")
    )
    max_calls = models.PositiveIntegerField(_("at most (calls)"), help_text=_("Calls per profile in the period."))
    period_days = models.PositiveIntegerField(_("period (days)"), help_text=_("A sliding period, 1 to 90 days."))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["category", "period_days"]
        verbose_name = _("frequency cap")
        verbose_name_plural = _("frequency caps")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "category", "period_days"], name="one_frequency_cap_per_period"
            )
        ]

    def __str__(self) -> str:
        return gettext("%(category)s: at most %(calls)s per %(days)s days") % {
            "category": self.category, "calls": self.max_calls, "days": self.period_days,
        }  # fmt: skip


class CountedCall(models.Model):
    """A call counted against its profile's frequency caps, in the database store (Redis holds them when set).

    `key` is the run and the step's sequence in it: the same for every attempt, retry and replay of that call,
    so it is counted once."""

    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="+", verbose_name=_("organization")
    )
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+", verbose_name=_("profile"))
    category = models.CharField(_("category"), max_length=64)
    key = models.CharField(_("key"), max_length=100)
    counted_at = models.DateTimeField(_("counted at"))

    class Meta:
        verbose_name = _("counted call")
        verbose_name_plural = _("counted calls")
        constraints = [models.UniqueConstraint(fields=["profile", "category", "key"], name="count_a_call_once")]
        indexes = [models.Index(fields=["profile", "category", "counted_at"], name="counted_call_window")]

    def __str__(self) -> str:
        return f"{self.category} {self.key}"
