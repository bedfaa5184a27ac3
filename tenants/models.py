import hashlib
import secrets

from auditlog.models import AbstractLogEntry
from django.conf import settings
from django.core.validators import validate_slug
from django.db import models
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from tenants.audit.context import Door
from tenants.audit.recording import AuditRecordManager
from tenants.roles import Role, Scope


class Organization(models.Model):
    slug = models.SlugField(_("slug"), max_length=50, unique=True, validators=[validate_slug])
    name = models.CharField(_("name"), max_length=200)
    is_active = models.BooleanField(_("is active"), default=True)
    allow_http = models.BooleanField(
        _("allow http"),
        default=False,
        help_text=_("Let actions of this organization call plain http:// URLs (for internal test environments only)."),
    )
    default_time_zone = models.CharField(
        _("default time zone"),
        max_length=64,
        default="UTC",
        help_text=_("IANA name, e.g. Europe/Paris: send windows for profiles without a time zone of their own."),
    )
    time_zone_attribute = models.CharField(
        _("time zone attribute"),
        max_length=64,
        default="timezone",
        blank=True,
        help_text=_("The profile attribute that holds a profile's time zone (an IANA name)."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("organization")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("user")
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["organization__slug", "user__username"]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="unique_member_per_org")]

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


KEY_PREFIX = "cdt_"
SCOPE_LIST = ", ".join(Scope.values)


def hash_api_key(raw_key: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough and lookups stay cheap.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def generate_api_key() -> tuple[str, str]:
    """Return (visible prefix, full raw key)."""
    prefix = KEY_PREFIX + secrets.token_hex(4)
    return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


class ApiKey(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("organization")
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=20, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(
        _("scopes"), default=list, help_text=lazy(lambda: gettext("Any of: %(scopes)s") % {"scopes": SCOPE_LIST}, str)()
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        editable=False,
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    expires_at = models.DateTimeField(
        _("expires at"), null=True, blank=True, help_text=_("Leave empty for a key that does not expire.")
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

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
        PENDING = "pending", _("Pending")
        ACCEPTED = "accepted", _("Accepted")
        REVOKED = "revoked", _("Revoked")
        EXPIRED = "expired", _("Expired")

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations", verbose_name=_("organization")
    )
    email = models.EmailField(_("email"), blank=True, help_text=_("The invitee's email address (or give a username)."))
    username = models.CharField(
        _("username"), max_length=150, blank=True, help_text=_("The invitee's login name (or give an email).")
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        editable=False,
        related_name="+",
        verbose_name=_("invited by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"), editable=False)
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True, editable=False)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        editable=False,
        related_name="+",
        verbose_name=_("accepted by"),
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
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


class AuditRecord(AbstractLogEntry):
    """One change to an organization's configuration (django-auditlog's entry): what changed, field by field
    (`changes`: field -> [old, new]), who made it (a user or an API key), when, and through which door."""

    # No database constraint: the trail outlives what it records, an organization's deletion included.
    organization = models.ForeignKey(
        Organization, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+",
        verbose_name=_("organization"),
    )  # fmt: skip
    object_type = models.CharField(_("object type"), max_length=40)
    door = models.CharField(_("door"), max_length=10, choices=Door.choices, default=Door.COMMAND)
    api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("API key")
    )
    # "user" or "api_key" ("" for a command) and the user's name or the key's, kept when either is deleted.
    actor_type = models.CharField(_("actor type"), max_length=10, blank=True, default="")
    actor_name = models.CharField(_("actor name"), max_length=200, blank=True, default="")

    objects = AuditRecordManager()

    class Meta(AbstractLogEntry.Meta):
        verbose_name = _("audit record")
        verbose_name_plural = _("audit trail")
        indexes = [
            models.Index(fields=["organization", "timestamp"], name="audit_by_organization"),
            models.Index(fields=["organization", "object_type", "object_id"], name="audit_by_object"),
        ]

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("An audit record is written once and never changed.")
        super().save(*args, **kwargs)

    @property
    def snapshot(self) -> dict:
        """The object's fields after this change (secrets left out), for a restore; empty where none is kept."""
        return dict((self.serialized_data or {}).get("fields", {}))
