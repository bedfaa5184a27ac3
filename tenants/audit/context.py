"""Who is changing things, and through which door: set per request by the middleware, else a command."""

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

API_PATH_PREFIX = "/api/"


class Door(models.TextChoices):
    ADMIN = "admin", _("Admin")
    API = "api", _("API")
    COMMAND = "command", _("Command")


@dataclass(frozen=True)
class Source:
    """Where a change comes from. A request's user and API key are read when the change is recorded:
    the API authenticates inside the view, after the middleware ran."""

    door: str
    request: HttpRequest | None = None
    user: Any = None
    api_key: Any = None


_source: ContextVar[Source | None] = ContextVar("audit_source", default=None)


@dataclass(frozen=True)
class Actor:
    door: str
    user: Any
    api_key: Any

    @property
    def kind(self) -> str:
        if self.user is not None:
            return "user"
        return "api_key" if self.api_key is not None else ""

    @property
    def name(self) -> str:
        if self.user is not None:
            return self.user.get_username()
        if self.api_key is not None:
            return str(self.api_key)
        return ""


def current_actor() -> Actor:
    """The door, user and API key of the change being recorded now; outside a request, a command's."""
    from tenants.models import ApiKey  # the models import this module

    source = _source.get()
    if source is None:
        return Actor(door=Door.COMMAND, user=None, api_key=None)
    user, api_key = source.user, source.api_key
    if source.request is not None:
        candidate = getattr(source.request, "user", None)
        if candidate is not None and candidate.is_authenticated:
            user = candidate
        auth = getattr(source.request, "auth", None)  # DRF sets it on the request it wraps
        if isinstance(auth, ApiKey):
            api_key = auth
    return Actor(door=source.door, user=user, api_key=api_key)


@contextlib.contextmanager
def audited_as(*, door: str = Door.COMMAND, user: Any = None, api_key: Any = None) -> Iterator[None]:
    """Record the changes made inside as made by `user` (or `api_key`) through `door`."""
    token = _source.set(Source(door=door, user=user, api_key=api_key))
    try:
        yield
    finally:
        _source.reset(token)


class AuditDoorMiddleware:
    """Tells the audit trail which door a request came through, by its path: the API's, else the admin's."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        door = Door.API if request.path_info.startswith(API_PATH_PREFIX) else Door.ADMIN
        token = _source.set(Source(door=door, request=request))
        try:
            return self.get_response(request)
        finally:
            _source.reset(token)
