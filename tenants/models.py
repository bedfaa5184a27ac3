import hashlib
import secrets

from django.conf import settings
from django.core.validators import validate_slug
from django.db import models
from django.utils import timezone

from tenants.roles import Role, Scope


class Organization(models.Model):
    slug = models.SlugField(max_length=50, unique=True, validators=[validate_slug])
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    allow_http = models.BooleanField(
        default=False,
        help_text="Let actions of this organization call plain http:// URLs (for internal test environments only).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization__slug", "user__username"]
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="unique_member_per_org")]

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


KEY_PREFIX = "cdt_"


def hash_api_key(raw_key: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough and lookups stay cheap.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def generate_api_key() -> tuple[str, str]:
    """Return (visible prefix, full raw key)."""
    prefix = KEY_PREFIX + secrets.token_hex(4)
    return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


class ApiKey(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=20, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list, help_text="Any of: " + ", ".join(Scope.values))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Leave empty for a key that does not expire.")
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


INVITATION_PREFIX = "inv_"


def generate_invitation_token() -> str:
    """The raw token an invitee accepts with; like an API key, only its hash is stored."""
    return INVITATION_PREFIX + secrets.token_urlsafe(32)


class Invitation(models.Model):
    """An organization admin's offer of a role to one person, named by email or username.

    Nobody becomes a member without accepting: the invitee, logged in, presents the token.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(blank=True, help_text="The invitee's email address (or give a username).")
    username = models.CharField(max_length=150, blank=True, help_text="The invitee's login name (or give an email).")
    role = models.CharField(max_length=20, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, editable=False, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(editable=False)
    accepted_at = models.DateTimeField(null=True, blank=True, editable=False)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, editable=False, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(email="") & ~models.Q(username="")) | (~models.Q(email="") & models.Q(username="")),
                name="invitation_names_email_or_username",
            )
        ]

    def __str__(self) -> str:
        return f"{self.invitee} ({self.role})"

    @property
    def invitee(self) -> str:
        return self.email or self.username

    @property
    def status(self) -> str:
        if self.accepted_at is not None:
            return self.Status.ACCEPTED
        if self.revoked_at is not None:
            return self.Status.REVOKED
        if self.expires_at <= timezone.now():
            return self.Status.EXPIRED
        return self.Status.PENDING

    def is_for(self, user: models.Model) -> bool:
        """Addressed to `user`: the same username, or (invited by email) the same address, case aside."""
        if self.username:
            return user.get_username() == self.username
        email = getattr(user, "email", "") or ""
        return bool(email) and email.casefold() == self.email.casefold()


class UserSettings(models.Model):
    """What a person chose for themselves, whichever organization they work in: their language."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conduit_settings")
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, blank=True)

    def __str__(self) -> str:
        return f"{self.user}: {self.language or 'browser language'}"
