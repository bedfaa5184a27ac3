from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from config.common.exceptions import Conflict
from tenants.models import ApiKey, Membership, Organization, generate_api_key, hash_api_key
from tenants.roles import Role, Scope

LAST_USED_RESOLUTION = timedelta(minutes=1)


def organization_create(*, slug: str, name: str, allow_http: bool = False) -> Organization:
    organization = Organization(slug=slug, name=name, allow_http=allow_http)
    organization.full_clean()
    organization.save()
    return organization


def _validate_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationError({"role": f'"{role}" is not a role; choose one of {", ".join(Role.values)}.'})


@transaction.atomic
def membership_add(
    *,
    organization: Organization,
    username: str,
    role: str,
    password: str | None = None,
    create_user: bool = False,
) -> Membership:
    """Add a user to an organization. Operators (not the API) may create the user too."""
    _validate_role(role)
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        if not create_user:
            raise ValidationError({"username": f'No user named "{username}".'})
        user = User.objects.create_user(username=username, password=password)
    elif password:
        user.set_password(password)
        user.save(update_fields=["password"])
    if Membership.objects.filter(organization=organization, user=user).exists():
        raise ValidationError({"username": f'"{username}" is already a member of {organization.slug}.'})
    return Membership.objects.create(organization=organization, user=user, role=role)


def membership_ensure_admin_remains(*, membership: Membership, new_role: str | None) -> None:
    """Refuse to demote or remove (new_role None) the organization's last admin."""
    if membership.pk is None or membership.role != Role.ADMIN or new_role == Role.ADMIN:
        return
    # Lock the admins so two concurrent demotions cannot both pass the check.
    admins = list(
        Membership.objects.select_for_update().filter(organization_id=membership.organization_id, role=Role.ADMIN)
    )
    if len(admins) <= 1:
        raise Conflict(
            "An organization needs at least one admin; this member is the last one.",
            {"role": ["The last admin cannot be demoted or removed."]},
        )


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str) -> Membership:
    _validate_role(role)
    membership_ensure_admin_remains(membership=membership, new_role=role)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    membership_ensure_admin_remains(membership=membership, new_role=None)
    membership.delete()


def _validate_scopes(scopes: list[str]) -> None:
    if not isinstance(scopes, list) or not scopes:
        raise ValidationError({"scopes": "Give at least one scope: " + ", ".join(Scope.values) + "."})
    unknown = [s for s in scopes if s not in Scope.values]
    if unknown:
        raise ValidationError({"scopes": f"Unknown scope {unknown[0]!r}; choose from {', '.join(Scope.values)}."})


def api_key_create(
    *,
    organization: Organization,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    created_by: AbstractBaseUser | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw key, which is never stored and shown only now."""
    _validate_scopes(scopes)
    if not name or not name.strip():
        raise ValidationError({"name": "A key needs a name."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    prefix, raw_key = generate_api_key()
    key = ApiKey.objects.create(
        organization=organization,
        name=name.strip(),
        prefix=prefix,
        key_hash=hash_api_key(raw_key),
        scopes=sorted(set(scopes)),
        expires_at=expires_at,
        created_by=created_by,
    )
    return key, raw_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The usable key matching `raw_key`, or None. Records its use at most once a minute."""
    key = (
        ApiKey.objects.select_related("organization")
        .filter(key_hash=hash_api_key(raw_key), organization__is_active=True)
        .first()
    )
    if key is None or not key.is_usable:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        # Conditional update: many concurrent requests write at most once per minute.
        ApiKey.objects.filter(pk=key.pk).exclude(last_used_at__gt=now - LAST_USED_RESOLUTION).update(last_used_at=now)
        key.last_used_at = now
    return key


def user_token_expires_at(*, token: Token) -> datetime:
    """A user token works for CONDUIT_USER_TOKEN_TTL_S after its creation, however often it is used."""
    return token.created + timedelta(seconds=settings.CONDUIT_USER_TOKEN_TTL_S)


def user_token_is_expired(*, token: Token) -> bool:
    return user_token_expires_at(token=token) <= timezone.now()


@transaction.atomic
def user_token_issue(*, user: AbstractBaseUser) -> Token:
    """The user's token after a login: the current one while it works, else a new one.

    Logging in again does not extend a token: its life counts from its creation.
    """
    token = Token.objects.filter(user=user).first()
    if token is not None and not user_token_is_expired(token=token):
        return token
    Token.objects.filter(user=user).delete()
    # get_or_create: two logins at once both find no token; the second takes the one the first created.
    return Token.objects.get_or_create(user=user)[0]


def user_tokens_revoke(*, user: AbstractBaseUser) -> None:
    """End the user's API login (logout, a new password): the token stops working at once."""
    Token.objects.filter(user=user).delete()
