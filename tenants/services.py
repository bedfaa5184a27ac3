from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework.authtoken.models import Token

from config.common.exceptions import Conflict
from tenants.models import (
    ApiKey,
    Invitation,
    Membership,
    Organization,
    generate_api_key,
    generate_invitation_token,
    hash_api_key,
)
from tenants.roles import Role, Scope

LAST_USED_RESOLUTION = timedelta(minutes=1)


def organization_create(*, slug: str, name: str, allow_http: bool = False) -> Organization:
    organization = Organization(slug=slug, name=name, allow_http=allow_http)
    organization.full_clean()
    organization.save()
    return organization


def _validate_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationError(
            {
                "role": _('"%(role)s" is not a role; choose one of %(roles)s.')
                % {"role": role, "roles": ", ".join(Role.values)}
            }
        )


@transaction.atomic
def membership_add(
    *,
    organization: Organization,
    username: str,
    role: str,
    password: str | None = None,
    create_user: bool = False,
) -> Membership:
    """Add a user to an organization at once: for operators' commands and tests only.

    Organization admins invite instead (`invitation_create`): a user joins by accepting.
    """
    _validate_role(role)
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        if not create_user:
            raise ValidationError({"username": _('No user named "%(username)s".') % {"username": username}})
        user = User.objects.create_user(username=username, password=password)
    elif password:
        user.set_password(password)
        user.save(update_fields=["password"])
    if Membership.objects.filter(organization=organization, user=user).exists():
        raise ValidationError(
            {
                "username": _('"%(username)s" is already a member of %(organization)s.')
                % {"username": username, "organization": organization.slug}
            }
        )
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
            _("An organization needs at least one admin; this member is the last one."),
            {"role": [_("The last admin cannot be demoted or removed.")]},
        )


def organization_settings_update(*, organization: Organization, data: dict[str, Any]) -> Organization:
    """Save the settings an organization's admins change (checked by the caller); one save, one audit record."""
    for field, value in data.items():
        setattr(organization, field, value)
    if data:
        organization.save(update_fields=list(data))
    return organization


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
        raise ValidationError(
            {"scopes": _("Give at least one scope: %(scopes)s.") % {"scopes": ", ".join(Scope.values)}}
        )
    unknown = [s for s in scopes if s not in Scope.values]
    if unknown:
        raise ValidationError(
            {
                "scopes": _("Unknown scope %(scope)s; choose from %(scopes)s.")
                % {"scope": repr(unknown[0]), "scopes": ", ".join(Scope.values)}
            }
        )


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
        raise ValidationError({"name": _("A key needs a name.")})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": _("The expiry must be in the future.")})
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


def invitation_check_invitee(*, email: str, username: str) -> tuple[str, str]:
    """The invitee (email, username) stripped, or a ValidationError naming the field; the admin form asks
    this too. Only the form is checked: whether such a user exists is never asked."""
    email, username = (email or "").strip(), (username or "").strip()
    if bool(email) == bool(username):
        message = _("Give the invitee's email or username, not both.") if email else _("Give an email or a username.")
        raise ValidationError({"email" if email else "username": message})
    try:
        if email:
            validate_email(email)  # also refuses more than 320 characters
        else:
            UnicodeUsernameValidator()(username)
    except ValidationError:
        if email:
            raise ValidationError({"email": _("Enter a valid email address.")}) from None
        raise ValidationError({"username": _("A username has only letters, digits and @ . + - _.")}) from None
    if len(email) > 254 or len(username) > 150:
        raise ValidationError(
            {"email" if email else "username": _("Too long: 254 characters for an email, 150 for a username.")}
        )
    return email, username


@transaction.atomic
def invitation_create(
    *,
    organization: Organization,
    role: str,
    email: str = "",
    username: str = "",
    invited_by: AbstractBaseUser | None = None,
) -> tuple[Invitation, str]:
    """Invite one person by email or username; returns the invitation and its raw token, shown only now.

    Whether such a user exists is never looked up here, so the answer is the same either way.
    A new invitation of the same person replaces their pending one.
    """
    _validate_role(role)
    email, username = invitation_check_invitee(email=email, username=username)
    now = timezone.now()
    same_person = {"email__iexact": email} if email else {"username": username}
    Invitation.objects.filter(
        organization=organization, accepted_at=None, revoked_at=None, expires_at__gt=now, **same_person
    ).update(revoked_at=now)
    raw_token = generate_invitation_token()
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        username=username,
        role=role,
        token_hash=hash_api_key(raw_token),
        invited_by=invited_by,
        expires_at=now + timedelta(seconds=settings.CONDUIT_INVITATION_TTL_S),
    )
    return invitation, raw_token


def invitation_revoke(*, invitation: Invitation) -> Invitation:
    """The token stops working; the invitation stays listed for the record."""
    if invitation.accepted_at is not None:
        raise Conflict(
            _("This invitation was accepted; remove the member instead."),
            {"status": [_("The invitation is accepted.")]},
        )
    if invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
    return invitation


# Why an invitation cannot be accepted: the answer's detail, then the token field's message.
NOT_USABLE = {
    Invitation.Status.ACCEPTED: (
        gettext_lazy("This invitation has been accepted already."),
        gettext_lazy("The invitation is accepted."),
    ),
    Invitation.Status.REVOKED: (
        gettext_lazy("This invitation was revoked; ask the organization's admin for a new one."),
        gettext_lazy("The invitation is revoked."),
    ),
    Invitation.Status.EXPIRED: (
        gettext_lazy("This invitation has expired; ask the organization's admin for a new one."),
        gettext_lazy("The invitation is expired."),
    ),
}


@transaction.atomic
def invitation_accept(*, raw_token: str, user: AbstractBaseUser) -> Membership:
    """`user` accepts the invitation of `raw_token` and becomes a member with its role.

    A token that is unknown, of an inactive organization, or addressed to someone else is a 404:
    holding a token proves nothing about who it names.
    """
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("organization")
        .filter(token_hash=hash_api_key(raw_token), organization__is_active=True)
        .first()
    )
    if invitation is None or not invitation.is_for(user):
        raise Http404(_("Invitation not found."))
    status = invitation.status
    if status != Invitation.Status.PENDING:
        detail, problem = NOT_USABLE[status]
        raise Conflict(detail, {"token": [problem]})
    if Membership.objects.filter(organization=invitation.organization, user=user).exists():
        raise Conflict(
            _("You are a member of %(organization)s already.") % {"organization": invitation.organization.slug},
            {"token": [_("You are a member already; an admin changes roles.")]},
        )
    membership = Membership.objects.create(organization=invitation.organization, user=user, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership
