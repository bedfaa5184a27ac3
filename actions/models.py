import base64
import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

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

    class OnRateLimit(models.TextChoices):
        DELAY = "delay", "Delay until capacity frees (throttle)"
        REJECT = "reject", "Reject as rate_limited (cap)"

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="actions")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="What the action does, in words a marketer reads.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)

    method = models.CharField(max_length=6, choices=Method.choices, default=Method.POST)
    url = models.CharField(
        max_length=2000,
        help_text="Absolute https:// URL; the path may hold placeholders such as {{user_id}}.",
    )
    query = models.JSONField(default=list, blank=True, help_text='List of {"name": ..., "value": ...}.')
    headers = models.JSONField(default=list, blank=True, help_text='List of {"name": ..., "value": ...}.')
    body = models.JSONField(
        null=True,
        blank=True,
        help_text='JSON object or array; "{{amount}}" alone keeps the parameter\'s type.',
    )
    parameters = models.JSONField(
        default=list, blank=True, help_text="List of {name, type, required, default, description}."
    )

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
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="unique_action_name_per_org")
        ]

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
