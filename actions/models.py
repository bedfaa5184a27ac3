import base64
import secrets
import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from config.encryption import EncryptedJSONField, EncryptedTextField


class Action(models.Model):
    """A connection to a third-party REST/JSON service: typed parameters and a request template."""

    class Status(models.TextChoices):
        DRAFT = "draft", pgettext_lazy("action status", "Draft")
        ACTIVE = "active", pgettext_lazy("action status", "Active")
        ARCHIVED = "archived", pgettext_lazy("action status", "Archived")

    class Method(models.TextChoices):
        POST = "POST"
        PUT = "PUT"
        PATCH = "PATCH"
        GET = "GET"
        DELETE = "DELETE"

    class AuthType(models.TextChoices):
        NONE = "none", _("None")
        BASIC = "basic", _("Basic (username and password)")
        BEARER = "bearer", _("Bearer token")
        API_KEY = "api_key", _("API key (header or query)")
        OAUTH2_CLIENT_CREDENTIALS = "oauth2_client_credentials", _("OAuth2 client credentials")
        TOKEN_ENDPOINT = "token_endpoint", _("Token endpoint (any other token flow)")
        GOOGLE_SERVICE_ACCOUNT = "google_service_account", _("Google service account (Firebase, Google APIs)")

    class Kind(models.TextChoices):
        HTTP = "http", _("HTTP request (REST/JSON)")
        EMAIL = "email", _("Email (the organization's SMTP server)")

    class BodyType(models.TextChoices):
        JSON = "json", _("JSON")
        FORM = "form", _("Form (application/x-www-form-urlencoded)")

    class OnRateLimit(models.TextChoices):
        DELAY = "delay", _("Delay until capacity frees (throttle)")
        REJECT = "reject", _("Reject as rate_limited (cap)")

    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="actions", verbose_name=_("organization")
    )
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(
        _("description"), blank=True, help_text=_("What the action does, in words a marketer reads.")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.HTTP)
    method = models.CharField(_("method"), max_length=6, choices=Method.choices, default=Method.POST)
    url = models.CharField(
        _("url"),
        max_length=2000,
        blank=True,
        help_text=_("Absolute https:// URL; the path may hold placeholders such as {{user_id}}."),
    )
    query = models.JSONField(_("query"), default=list, blank=True, help_text=_('List of {"name": ..., "value": ...}.'))
    headers = models.JSONField(
        _("headers"), default=list, blank=True, help_text=_('List of {"name": ..., "value": ...}.')
    )
    body = models.JSONField(
        _("body"),
        null=True,
        blank=True,
        help_text=_('JSON object or array; "{{amount}}" alone keeps the parameter\'s type.'),
    )
    body_type = models.CharField(_("body type"), max_length=10, choices=BodyType.choices, default=BodyType.JSON)
    parameters = models.JSONField(
        _("parameters"), default=list, blank=True, help_text=_("List of {name, type, required, default, description}.")
    )
    # An email action's templates: to, cc, reply_to, from, subject, text, html.
    email = models.JSONField(_("email"), null=True, blank=True)

    auth_type = models.CharField(_("auth type"), max_length=30, choices=AuthType.choices, default=AuthType.NONE)
    auth_config = models.JSONField(_("auth config"), default=dict, blank=True)  # the non-secret auth fields
    # passwords, tokens, client secrets
    auth_secrets = EncryptedJSONField(blank=True, default=dict, verbose_name=_("auth secrets"))
    signing_secret = EncryptedTextField(blank=True, default="", verbose_name=_("signing secret"))
    # during rotation: both sign
    previous_signing_secret = EncryptedTextField(blank=True, default="", verbose_name=_("previous signing secret"))

    response_schema = models.JSONField(_("response schema"), null=True, blank=True)
    timeout_ms = models.PositiveIntegerField(
        _("timeout ms"), default=10_000, validators=[MinValueValidator(100), MaxValueValidator(30_000)]
    )
    max_retries = models.PositiveSmallIntegerField(_("max retries"), default=3, validators=[MaxValueValidator(10)])
    rate_limit_calls = models.PositiveIntegerField(
        _("rate limit calls"), null=True, blank=True, validators=[MinValueValidator(1)]
    )
    rate_limit_period_s = models.PositiveIntegerField(
        _("rate limit period s"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(86_400)]
    )
    on_rate_limit = models.CharField(
        _("on rate limit"), max_length=10, choices=OnRateLimit.choices, default=OnRateLimit.DELAY
    )

    # Send window (quiet hours): {"days": [0-6, Monday 0], "start": "09:00", "end": "20:00", "skip_dates":
    # ["2026-12-25"]} in the profile's time zone; null: any time. A journey's action step can override it.
    send_window = models.JSONField(_("send window"), null=True, blank=True)
    # Frequency-cap categories, e.g. ["marketing-sms"]: the organization's caps count calls per category.
    categories = models.JSONField(_("categories"), default=list, blank=True)

    client_certificate = models.TextField(
        _("client certificate"), blank=True, default="", help_text=_("PEM certificate for mutual TLS.")
    )
    client_key = EncryptedTextField(blank=True, default="", verbose_name=_("client key"))

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        editable=False,
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("action")
        verbose_name_plural = _("actions")
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
        verbose_name = _("action (palette)")
        verbose_name_plural = _("action palette")


class Invocation(models.Model):
    """One call of an action, durable: a row with a status, moved by services (SPEC sections 3, 8)."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("invocation status", "Pending")
        RUNNING = "running", pgettext_lazy("invocation status", "Running")
        SUCCEEDED = "succeeded", pgettext_lazy("invocation status", "Succeeded")
        FAILED = "failed", pgettext_lazy("invocation status", "Failed")
        RATE_LIMITED = "rate_limited", pgettext_lazy("invocation status", "Rate limited")

    class Origin(models.TextChoices):
        JOURNEY = "journey", pgettext_lazy("invocation origin", "Journey step")
        TEST = "test", pgettext_lazy("invocation origin", "Test")
        REPLAY = "replay", pgettext_lazy("invocation origin", "Replay")
        API = "api", pgettext_lazy("invocation origin", "API")

    FINAL = (Status.SUCCEEDED, Status.FAILED, Status.RATE_LIMITED)

    id = models.UUIDField(_("id"), primary_key=True, default=uuid.uuid4, editable=False)
    # The invocation's own id, or the original's for a replay: every call of one invocation carries it.
    idempotency_key = models.UUIDField(_("idempotency key"), default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="invocations", verbose_name=_("organization")
    )
    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="invocations", verbose_name=_("action"))
    origin = models.CharField(_("origin"), max_length=10, choices=Origin.choices, default=Origin.API)
    origin_ref = models.CharField(
        _("origin ref"), max_length=100, blank=True, default="", help_text=_("e.g. the step run.")
    )
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays", verbose_name=_("replay of")
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PENDING)
    outcome = models.CharField(_("outcome"), max_length=20, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # The rendered request before auth: what replay sends again. Credentials are added at send time.
    request = models.JSONField(_("request"), default=dict)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    response_headers = models.JSONField(_("response headers"), default=dict, blank=True)
    response_body = models.TextField(_("response body"), blank=True, default="")
    error = models.TextField(_("error"), blank=True, default="")
    latency_ms = models.PositiveIntegerField(_("latency ms"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)  # a worker's lease while running
    held_since = models.DateTimeField(_("held since"), null=True, blank=True)  # first held by an open circuit
    # The journey step's send window when it overrides the action's, and the profile's time zone, both set when
    # the call is made; window_wait_until: held outside its send window until then (not sent, not dropped).
    send_window = models.JSONField(_("send window"), null=True, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True, default="")
    window_wait_until = models.DateTimeField(_("waiting for the send window until"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("invocation")
        verbose_name_plural = _("invocations")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="invocation_due"),
            models.Index(fields=["organization", "action", "created_at"], name="invocation_by_action"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.id} ({self.status})"


class InvocationAttempt(models.Model):
    """Each attempt of an invocation, as the receiver answered it."""

    invocation = models.ForeignKey(
        Invocation, on_delete=models.CASCADE, related_name="attempt_log", verbose_name=_("invocation")
    )
    number = models.PositiveSmallIntegerField(_("number"))
    outcome = models.CharField(_("outcome"), max_length=20)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    response_headers = models.JSONField(_("response headers"), default=dict, blank=True)
    response_body = models.TextField(_("response body"), blank=True, default="")
    error = models.TextField(_("error"), blank=True, default="")
    latency_ms = models.PositiveIntegerField(_("latency ms"), default=0)
    started_at = models.DateTimeField(_("started at"))

    class Meta:
        verbose_name = _("invocation attempt")
        verbose_name_plural = _("invocation attempts")
        ordering = ["invocation", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.outcome}"


class EndpointLimit(models.Model):
    """A host's shared limit for all calls of an organization to it (default 300,000 per 60 s)."""

    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="endpoint_limits", verbose_name=_("organization")
    )
    host = models.CharField(_("host"), max_length=255, help_text=_("Host name as in the URLs, e.g. api.twilio.com."))
    calls = models.PositiveIntegerField(_("calls"), default=300_000, validators=[MinValueValidator(1)])
    period_s = models.PositiveIntegerField(
        _("period s"), default=60, validators=[MinValueValidator(1), MaxValueValidator(86_400)]
    )
    # Calls open to the host at once, across every worker (AJO caps a host at 400 connections).
    max_concurrent = models.PositiveIntegerField(
        _("max concurrent"), default=400, validators=[MinValueValidator(1), MaxValueValidator(100_000)]
    )

    class Meta:
        verbose_name = _("endpoint limit")
        verbose_name_plural = _("endpoint limits")
        ordering = ["host"]
        constraints = [models.UniqueConstraint(fields=["organization", "host"], name="unique_limit_per_host")]

    def __str__(self) -> str:
        return gettext("%(host)s: %(calls)s per %(period)s s") % {
            "host": self.host,
            "calls": self.calls,
            "period": self.period_s,
        }


class CircuitBreaker(models.Model):
    """The state of calls from an organization to one host (SPEC section 2)."""

    class State(models.TextChoices):
        CLOSED = "closed", _("Closed (calls flow)")
        OPEN = "open", _("Open (calls held)")
        HALF_OPEN = "half_open", _("Half-open (one trial call at a time)")

    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="circuits", verbose_name=_("organization")
    )
    host = models.CharField(_("host"), max_length=255)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.CLOSED)
    window_started_at = models.DateTimeField(_("window started at"), default=timezone.now)
    calls = models.PositiveIntegerField(_("calls"), default=0)
    failures = models.PositiveIntegerField(_("failures"), default=0)
    opened_at = models.DateTimeField(_("opened at"), null=True, blank=True)
    trial_until = models.DateTimeField(_("trial until"), null=True, blank=True)  # a trial call is in flight until then
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("circuit breaker")
        verbose_name_plural = _("circuit breakers")
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

    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="secret_values", verbose_name=_("organization")
    )
    name = models.CharField(_("name"), max_length=64, help_text=_("Letters, digits and _, e.g. SLACK_WEBHOOK."))
    value = EncryptedTextField(verbose_name=_("value"))
    description = models.CharField(_("description"), max_length=200, blank=True, default="")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("secret value")
        verbose_name_plural = _("secret values")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="unique_secret_name_per_org")]

    def __str__(self) -> str:
        return self.name


class EmailSettings(models.Model):
    """An organization's SMTP connection, used by every email action of the organization."""

    class Security(models.TextChoices):
        STARTTLS = "starttls", _("STARTTLS (usually port 587)")
        SSL = "ssl", _("TLS from the start (usually port 465)")
        NONE = "none", _("None (a login is sent only to a server on a private network)")

    organization = models.OneToOneField(
        "tenants.Organization", on_delete=models.CASCADE, related_name="email_settings", verbose_name=_("organization")
    )
    host = models.CharField(_("host"), max_length=255, help_text=_("The SMTP server, e.g. smtp.sendgrid.net."))
    port = models.PositiveIntegerField(
        _("port"), default=587, validators=[MinValueValidator(1), MaxValueValidator(65_535)]
    )
    security = models.CharField(_("security"), max_length=10, choices=Security.choices, default=Security.STARTTLS)
    username = models.CharField(_("username"), max_length=255, blank=True, default="")
    password = EncryptedTextField(blank=True, default="", verbose_name=_("password"))
    default_from = models.CharField(
        _("default from"),
        max_length=320,
        help_text=_('The sender when an action names none, e.g. "Acme <hello@acme.test>".'),
    )
    timeout_s = models.PositiveSmallIntegerField(
        _("timeout s"), default=10, validators=[MinValueValidator(1), MaxValueValidator(60)], help_text=_("Seconds.")
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("email settings")
        verbose_name_plural = _("email settings")

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"
