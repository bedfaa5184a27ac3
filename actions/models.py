import base64
import secrets
import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from config.encryption import EncryptedJSONField, EncryptedTextField


class Action(models.Model):
    """A connection to a third-party REST/JSON service: typed parameters and a request template."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        ARCHIVED = "archived", "Archived"

    class Method(models.TextChoices):
        POST = "POST"
        PUT = "PUT"
        PATCH = "PATCH"
        GET = "GET"
        DELETE = "DELETE"

    class AuthType(models.TextChoices):
        NONE = "none", "None"
        BASIC = "basic", "Basic (username and password)"
        BEARER = "bearer", "Bearer token"
        API_KEY = "api_key", "API key (header or query)"
        OAUTH2_CLIENT_CREDENTIALS = "oauth2_client_credentials", "OAuth2 client credentials"
        TOKEN_ENDPOINT = "token_endpoint", "Token endpoint (any other token flow)"
        GOOGLE_SERVICE_ACCOUNT = "google_service_account", "Google service account (Firebase, Google APIs)"

    class Kind(models.TextChoices):
        HTTP = "http", "HTTP request (REST/JSON)"
        EMAIL = "email", "Email (the organization's SMTP server)"

    class BodyType(models.TextChoices):
        JSON = "json", "JSON"
        FORM = "form", "Form (application/x-www-form-urlencoded)"

    class OnRateLimit(models.TextChoices):
        DELAY = "delay", "Delay until capacity frees (throttle)"
        REJECT = "reject", "Reject as rate_limited (cap)"

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="actions")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="What the action does, in words a marketer reads.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.HTTP)
    method = models.CharField(max_length=6, choices=Method.choices, default=Method.POST)
    url = models.CharField(
        max_length=2000,
        blank=True,
        help_text="Absolute https:// URL; the path may hold placeholders such as {{user_id}}.",
    )
    query = models.JSONField(default=list, blank=True, help_text='List of {"name": ..., "value": ...}.')
    headers = models.JSONField(default=list, blank=True, help_text='List of {"name": ..., "value": ...}.')
    body = models.JSONField(
        null=True,
        blank=True,
        help_text='JSON object or array; "{{amount}}" alone keeps the parameter\'s type.',
    )
    body_type = models.CharField(max_length=10, choices=BodyType.choices, default=BodyType.JSON)
    parameters = models.JSONField(
        default=list, blank=True, help_text="List of {name, type, required, default, description}."
    )
    # An email action's templates: to, cc, reply_to, from, subject, text, html.
    email = models.JSONField(null=True, blank=True)

    auth_type = models.CharField(max_length=30, choices=AuthType.choices, default=AuthType.NONE)
    auth_config = models.JSONField(default=dict, blank=True)  # the non-secret auth fields
    auth_secrets = EncryptedJSONField(blank=True, default=dict)  # passwords, tokens, client secrets
    signing_secret = EncryptedTextField(blank=True, default="")
    previous_signing_secret = EncryptedTextField(blank=True, default="")  # during rotation: both sign

    response_schema = models.JSONField(null=True, blank=True)
    timeout_ms = models.PositiveIntegerField(
        default=10_000, validators=[MinValueValidator(100), MaxValueValidator(30_000)]
    )
    max_retries = models.PositiveSmallIntegerField(default=3, validators=[MaxValueValidator(10)])
    rate_limit_calls = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    rate_limit_period_s = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(86_400)]
    )
    on_rate_limit = models.CharField(max_length=10, choices=OnRateLimit.choices, default=OnRateLimit.DELAY)

    client_certificate = models.TextField(blank=True, default="", help_text="PEM certificate for mutual TLS.")
    client_key = EncryptedTextField(blank=True, default="")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="unique_action_name_per_org")]

    def __str__(self) -> str:
        return self.name


def generate_signing_secret() -> str:
    """A Standard Webhooks secret: whsec_ + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class PaletteAction(Action):
    """The palette: what marketers and viewers see of an action (never its configuration)."""

    class Meta:
        proxy = True
        verbose_name = "action (palette)"
        verbose_name_plural = "action palette"


class Invocation(models.Model):
    """One call of an action, durable: a row with a status, moved by services (SPEC sections 3, 8)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        RATE_LIMITED = "rate_limited", "Rate limited"

    class Origin(models.TextChoices):
        JOURNEY = "journey", "Journey step"
        TEST = "test", "Test"
        REPLAY = "replay", "Replay"
        API = "api", "API"

    FINAL = (Status.SUCCEEDED, Status.FAILED, Status.RATE_LIMITED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The invocation's own id, or the original's for a replay: every call of one invocation carries it.
    idempotency_key = models.UUIDField(default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="invocations")
    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="invocations")
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.API)
    origin_ref = models.CharField(max_length=100, blank=True, default="", help_text="e.g. the step run.")
    replay_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    outcome = models.CharField(max_length=20, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    # The rendered request before auth: what replay sends again. Credentials are added at send time.
    request = models.JSONField(default=dict)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)  # a worker's lease while running
    held_since = models.DateTimeField(null=True, blank=True)  # first held by an open circuit
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="invocation_due"),
            models.Index(fields=["organization", "action", "created_at"], name="invocation_by_action"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.id} ({self.status})"


class InvocationAttempt(models.Model):
    """Each attempt of an invocation, as the receiver answered it."""

    invocation = models.ForeignKey(Invocation, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=20)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    latency_ms = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()

    class Meta:
        ordering = ["invocation", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.outcome}"


class EndpointLimit(models.Model):
    """A host's shared limit for all calls of an organization to it (default 300,000 per 60 s)."""

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="endpoint_limits")
    host = models.CharField(max_length=255, help_text="Host name as in the URLs, e.g. api.twilio.com.")
    calls = models.PositiveIntegerField(default=300_000, validators=[MinValueValidator(1)])
    period_s = models.PositiveIntegerField(default=60, validators=[MinValueValidator(1), MaxValueValidator(86_400)])
    # Calls open to the host at once, across every worker (AJO caps a host at 400 connections).
    max_concurrent = models.PositiveIntegerField(
        default=400, validators=[MinValueValidator(1), MaxValueValidator(100_000)]
    )

    class Meta:
        ordering = ["host"]
        constraints = [models.UniqueConstraint(fields=["organization", "host"], name="unique_limit_per_host")]

    def __str__(self) -> str:
        return f"{self.host}: {self.calls} per {self.period_s} s"


class CircuitBreaker(models.Model):
    """The state of calls from an organization to one host (SPEC section 2)."""

    class State(models.TextChoices):
        CLOSED = "closed", "Closed (calls flow)"
        OPEN = "open", "Open (calls held)"
        HALF_OPEN = "half_open", "Half-open (one trial call at a time)"

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="circuits")
    host = models.CharField(max_length=255)
    state = models.CharField(max_length=10, choices=State.choices, default=State.CLOSED)
    window_started_at = models.DateTimeField(default=timezone.now)
    calls = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    trial_until = models.DateTimeField(null=True, blank=True)  # a trial call is in flight until then
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["host"]
        constraints = [models.UniqueConstraint(fields=["organization", "host"], name="unique_circuit_per_host")]

    def __str__(self) -> str:
        return f"{self.host}: {self.state}"


class RateLimitCounter(models.Model):
    """Counts per time slice for one limit key: the embedded (database) rate limiter's state."""

    key = models.CharField(max_length=300, primary_key=True)
    slices = models.JSONField(default=dict)  # slice number -> calls in it

    def __str__(self) -> str:
        return self.key


class InFlightCounter(models.Model):
    """Calls open to one host of an organization, per worker process: the embedded concurrency cap's state."""

    key = models.CharField(max_length=300, primary_key=True)  # "<organization id>:<host>"
    workers = models.JSONField(default=dict)  # worker -> [calls open, until (ms since the epoch)]

    def __str__(self) -> str:
        return self.key


class SecretValue(models.Model):
    """A named, encrypted constant of an organization, used in templates as {{secrets.NAME}}."""

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="secret_values")
    name = models.CharField(max_length=64, help_text="Letters, digits and _, e.g. SLACK_WEBHOOK.")
    value = EncryptedTextField()
    description = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="unique_secret_name_per_org")]

    def __str__(self) -> str:
        return self.name


class EmailSettings(models.Model):
    """An organization's SMTP connection, used by every email action of the organization."""

    class Security(models.TextChoices):
        STARTTLS = "starttls", "STARTTLS (usually port 587)"
        SSL = "ssl", "TLS from the start (usually port 465)"
        NONE = "none", "None (a login is sent only to a server on a private network)"

    organization = models.OneToOneField("tenants.Organization", on_delete=models.CASCADE, related_name="email_settings")
    host = models.CharField(max_length=255, help_text="The SMTP server, e.g. smtp.sendgrid.net.")
    port = models.PositiveIntegerField(default=587, validators=[MinValueValidator(1), MaxValueValidator(65_535)])
    security = models.CharField(max_length=10, choices=Security.choices, default=Security.STARTTLS)
    username = models.CharField(max_length=255, blank=True, default="")
    password = EncryptedTextField(blank=True, default="")
    default_from = models.CharField(
        max_length=320, help_text='The sender when an action names none, e.g. "Acme <hello@acme.test>".'
    )
    timeout_s = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(60)], help_text="Seconds."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "email settings"
        verbose_name_plural = "email settings"

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"
