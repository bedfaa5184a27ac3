from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token
from rest_framework.request import Request

from tenants.models import KEY_PREFIX, ApiKey
from tenants.services import api_key_authenticate, user_token_is_expired, user_tokens_revoke


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer cdt_...`: an organization API key, for external systems.

    The request's user stays anonymous; `request.auth` is the ApiKey, and the scoped
    viewset checks that it belongs to the organization in the URL.
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AnonymousUser, ApiKey] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Invalid Bearer header: give exactly one API key."))
        try:
            raw_key = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed(_("Invalid API key.")) from None
        if not raw_key.startswith(KEY_PREFIX):
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        key = api_key_authenticate(raw_key=raw_key)
        if key is None:
            raise exceptions.AuthenticationFailed(_("Invalid, expired or revoked API key."))
        return AnonymousUser(), key

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class ExpiringTokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`: a user token from /api/v1/auth/token/, refused once expired.

    A password change or a logout deletes the token (tenants.signals, LogoutView).
    """

    def authenticate_credentials(self, key: str) -> tuple[AbstractBaseUser, Token]:
        user, token = super().authenticate_credentials(key)
        if user_token_is_expired(token=token):
            user_tokens_revoke(user=user)
            raise exceptions.AuthenticationFailed(_("Token expired; log in again at /api/v1/auth/token/."))
        return user, token
