"""The built-in email action: templates rendered like an HTTP action's, sent through Django's
SMTP backend with the organization's SMTP settings.

An email is an invocation like any other. Its rendered request is `SMTP smtp://host:port`
with From, To, Cc, Reply-To and Subject as headers and the text and HTML parts as a JSON
body, so replay, the invocation pages and the runtime need nothing of their own. A refusal
by the server is the outcome `smtp_<code>`: 4xx is temporary and retried, 5xx is not.
"""

import contextlib
import contextvars
import ipaddress
import json
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from email.utils import formataddr, getaddresses, parseaddr
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import sanitize_address
from django.core.validators import validate_email
from django.utils.html import escape
from django.utils.translation import gettext as _

from actions.delivery import destinations
from actions.delivery.masking import mask
from actions.delivery.rendering import (
    PLACEHOLDER,
    RenderedRequest,
    RenderError,
    encode_json,
    placeholder_problems,
    resolve_values,
    to_json_value,
    to_text,
)
from actions.delivery.results import CallResult
from actions.models import Action, EmailSettings

TEMPLATE_KEYS = ("to", "cc", "reply_to", "from", "subject", "text", "html")
HEADER_OF = {"from": "From", "to": "To", "cc": "Cc", "reply_to": "Reply-To", "subject": "Subject"}


# --- validation at save time --------------------------------------------------------


def validate_email_templates(email: Any, *, declared: set[str]) -> list[str]:
    """Problems with an email action's templates, each naming its part."""
    if not isinstance(email, dict):
        return [_('must be an object with to, subject and text (or html), e.g. {"to": "{{email}}", ...}')]
    unknown = _("%(field)s: unknown part of an email; use %(parts)s")
    problems = [unknown % {"field": key, "parts": ", ".join(TEMPLATE_KEYS)} for key in email
                if key not in TEMPLATE_KEYS]  # fmt: skip
    for key in TEMPLATE_KEYS:
        value = email.get(key)
        if value is not None and not isinstance(value, str):
            problems.append(_("%(field)s: must be text") % {"field": key})
        elif value:
            problems += placeholder_problems(value, declared, key)
    for key in ("to", "subject"):
        if not email.get(key):
            problems.append(_("%(field)s: required for an email") % {"field": key})
    if not email.get("text") and not email.get("html"):
        problems.append(_("text: give a plain-text body, an HTML body, or both"))
    for key in ("subject", "from", "to", "cc", "reply_to"):
        value = email.get(key)
        if isinstance(value, str) and ("\n" in value or "\r" in value):
            problems.append(_("%(field)s: must be on one line") % {"field": key})
    return problems


# --- rendering ----------------------------------------------------------------------


def one_address(text: str, key: str) -> str:
    """`text` as exactly one address, its name quoted as needed; RenderError naming `key` otherwise.

    One value gives one address: a value from an event cannot add recipients with a comma or a
    display name holding one.
    """
    if "\r" in text or "\n" in text:
        raise RenderError({key: f"{key}: an address holds a line break"})
    found = [(name, address) for name, address in getaddresses([text]) if address]
    if len(found) != 1:
        raise RenderError({key: f"{key}: {text!r} is not one email address (several come from a list parameter)"})
    name, address = found[0]
    try:
        validate_email(address)
    except ValidationError:
        raise RenderError({key: f"{key}: {address!r} is not an email address"}) from None
    return formataddr((name, address))


def _addresses(template: str, values: dict[str, Any], key: str) -> list[str]:
    whole = PLACEHOLDER.fullmatch(template.strip())
    if whole and isinstance(values[whole.group(1)], list):  # a list parameter: one address per item
        items = [to_text(v) for v in to_json_value(values[whole.group(1)])]
    else:  # the template's own commas separate addresses; each part gives exactly one
        items = [PLACEHOLDER.sub(lambda m: to_text(values[m.group(1)]), part) for part in template.split(",")]
    return [one_address(item, key) for item in items if item.strip()]


def render_email(action: Action, values: dict[str, Any]) -> RenderedRequest:
    """The email for these parameter values, as a rendered request. Raises RenderError."""
    resolved = resolve_values(action.parameters, values)
    smtp = EmailSettings.objects.filter(organization_id=action.organization_id).first()
    if smtp is None:
        raise RenderError({"email": "This organization has no SMTP settings yet: an administrator sets them first."})
    email = action.email or {}

    def text(key: str, encode=lambda s: s) -> str:
        return PLACEHOLDER.sub(lambda m: encode(to_text(resolved[m.group(1)])), email.get(key) or "")

    to = _addresses(email.get("to") or "", resolved, "to")
    if not to:
        raise RenderError({"to": "to: the email has no recipient"})
    subject = text("subject")
    sender = one_address(text("from") or smtp.default_from, "from")
    if "\r" in subject or "\n" in subject:
        raise RenderError({"subject": "subject: a value put a line break in it"})
    # The addresses travel as lists in the body, so sending never parses header text again.
    body: dict[str, Any] = {"to": to, "cc": _addresses(email.get("cc") or "", resolved, "cc"),
                            "reply_to": _addresses(email.get("reply_to") or "", resolved, "reply_to")}  # fmt: skip
    headers = [("From", sender), ("To", ", ".join(to))]
    headers += [(HEADER_OF[key], ", ".join(body[key])) for key in ("cc", "reply_to") if body[key]]
    headers.append(("Subject", subject))
    # Values are escaped in the HTML part: a profile's name must not become markup.
    body.update(text=text("text"), html=text("html", escape) if email.get("html") else None)
    return RenderedRequest("SMTP", f"smtp://{smtp.host}:{smtp.port}", headers, encode_json(body))


# --- sending ------------------------------------------------------------------------


class _GuardedSMTP(smtplib.SMTP):
    """smtplib connecting through outbound safety: the resolved IP is checked at connection time."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return destinations.connect_allowed(host, port, timeout=timeout)


class _GuardedSMTPSSL(smtplib.SMTP_SSL):
    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = destinations.connect_allowed(host, port, timeout=timeout)
        return self.context.wrap_socket(sock, server_hostname=self._host)


class _PrivateOnlySMTP(_GuardedSMTP):
    """A login without TLS: only to a server on a private network, never across the internet."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = super()._get_socket(host, port, timeout)
        if ipaddress.ip_address(sock.getpeername()[0]).is_global:
            sock.close()
            raise destinations.DestinationRefused(
                f"Refused: {host} is on the internet and the login would go unencrypted; choose STARTTLS or TLS."
            )
        return sock


class GuardedEmailBackend(EmailBackend):
    """Django's SMTP backend, with the connection made through `destinations.connect_allowed`."""

    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        if self.use_ssl:
            return _GuardedSMTPSSL
        return _PrivateOnlySMTP if self.username and not self.use_tls else _GuardedSMTP


def _refusal(code: int, message: Any) -> tuple[str, str, dict]:
    text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
    text = text.replace("\x00", "\ufffd")  # PostgreSQL stores no NUL
    return f"smtp_{code}", f"The SMTP server refused: {code} {text}", {"smtp_code": code, "message": text}


def _narrowed(rendered: RenderedRequest, parts: dict, later: set[str]) -> dict:
    """The recorded request, addressed only to the recipients refused for now: what a retry sends."""
    kept = {key: [a for a in parts.get(key) or [] if parseaddr(a)[1].lower() in later] for key in ("to", "cc")}
    body = {**parts, **kept}
    headers = [[name, value] for name, value in rendered.headers if name not in ("To", "Cc")]
    headers[1:1] = [[HEADER_OF[key], ", ".join(kept[key])] for key in ("to", "cc") if kept[key]]
    return {"method": rendered.method, "url": rendered.url, "headers": headers, "body": encode_json(body).decode()}


class _Server:
    """An organization's SMTP settings as a batch read them, and up to CONDUIT_SMTP_CONNECTIONS
    connections to that server shared by the batch's calls in flight (one call per connection at a time)."""

    def __init__(self, smtp: EmailSettings | None):
        self.smtp = smtp
        self.idle: list[GuardedEmailBackend] = []  # list.append and list.pop are atomic: no lock needed
        self.slots = threading.BoundedSemaphore(settings.CONDUIT_SMTP_CONNECTIONS)

    def sendmail(self, sender: str, recipients: list[str], data: bytes) -> dict:
        """smtplib's sendmail on an idle connection, or a new one while fewer than the bound are open."""
        with self.slots:
            backend = self.idle.pop() if self.idle else None
            if backend is not None:
                try:
                    refused = backend.connection.sendmail(sender, recipients, data)
                except smtplib.SMTPServerDisconnected:  # the server closed the idle connection: once more, anew
                    _close(backend)
                    backend = None
                except BaseException as exc:
                    self._after_failure(backend, exc)
                    raise
                else:
                    self.idle.append(backend)
                    return refused
            backend = _backend(self.smtp)
            try:
                backend.open()
            except BaseException:
                _close(backend)  # never kept: a session that did not log in
                raise
            try:
                refused = backend.connection.sendmail(sender, recipients, data)
            except BaseException as exc:
                self._after_failure(backend, exc)
                raise
            self.idle.append(backend)
            return refused

    def _after_failure(self, backend: GuardedEmailBackend, exc: BaseException) -> None:
        # A refusal leaves the session usable (smtplib resets it); anything else breaks it.
        if isinstance(exc, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused) and backend.connection:
            self.idle.append(backend)
        else:
            _close(backend)

    def close(self) -> None:
        while self.idle:
            _close(self.idle.pop())


def _close(backend: GuardedEmailBackend) -> None:
    with contextlib.suppress(Exception):  # closing a dead connection: nothing left to do
        backend.close()


_pool: contextvars.ContextVar[dict[int, _Server] | None] = contextvars.ContextVar("conduit_smtp", default=None)


@contextlib.contextmanager
def connection_pool() -> Iterator[None]:
    """Within a batch of calls, an organization's SMTP settings are read once and its emails share
    a few SMTP connections (settings changed meanwhile apply from the next batch on).

    Django's backend opens a connection per send; reusing one roughly doubles the rate a
    server takes (bench/emails.py). The connections are closed when the batch ends.
    """
    token = _pool.set({})
    try:
        yield
    finally:
        for server in (_pool.get() or {}).values():
            server.close()
        _pool.reset(token)


def smtp_preload(organization_ids: set[int]) -> None:
    """Read these organizations' SMTP settings into the batch's pool, from the thread that holds the database."""
    pool = _pool.get()
    if pool is None:
        return
    missing = organization_ids - set(pool)
    if missing:
        found = {smtp.organization_id: smtp for smtp in EmailSettings.objects.filter(organization_id__in=missing)}
        for organization_id in missing:
            pool[organization_id] = _Server(found.get(organization_id))


def _server(organization_id: int) -> _Server:
    pool = _pool.get()
    if pool is not None and organization_id in pool:
        return pool[organization_id]
    server = _Server(EmailSettings.objects.filter(organization_id=organization_id).first())
    if pool is not None:
        pool[organization_id] = server
    return server


def _backend(smtp: EmailSettings) -> GuardedEmailBackend:
    return GuardedEmailBackend(
        host=smtp.host, port=smtp.port, username=smtp.username or None, password=smtp.password or None,
        use_tls=smtp.security == EmailSettings.Security.STARTTLS, use_ssl=smtp.security == EmailSettings.Security.SSL,
        timeout=smtp.timeout_s, fail_silently=False,
    )  # fmt: skip


def _sendmail(server: _Server, pooled: bool, sender: str, recipients: list[str], data: bytes) -> dict:
    """On the batch's connections to this server, or on a connection of its own outside a batch."""
    if pooled:
        return server.sendmail(sender, recipients, data)
    backend = _backend(server.smtp)
    backend.open()
    try:
        return backend.connection.sendmail(sender, recipients, data)
    finally:
        backend.close()


def send_email(action: Action, rendered: RenderedRequest, idempotency_key: str | None, shown: dict) -> CallResult:
    """Send the rendered email. Never raises for the network; `shown` is the request as recorded."""
    server = _server(action.organization_id)
    smtp = server.smtp
    if smtp is None:
        return CallResult(outcome="error", request=shown, error="This organization has no SMTP settings.")
    try:
        parts = json.loads(rendered.body or b"{}")
    except ValueError:
        parts = None
    if not isinstance(parts, dict) or not isinstance(parts.get("to"), list) or rendered.method != "SMTP":
        return CallResult(outcome="error", request=shown, error="This call was not made for an email action.")
    headers = {"Message-ID": f"<{idempotency_key}@conduit>"} if idempotency_key else {}
    message = EmailMultiAlternatives(
        subject=rendered.header("Subject") or "", body=parts.get("text") or "", from_email=rendered.header("From"),
        to=parts["to"], cc=parts.get("cc") or [], reply_to=parts.get("reply_to") or [], headers=headers,
    )  # fmt: skip
    if parts.get("html"):
        message.attach_alternative(parts["html"], "text/html")
    started = time.monotonic()
    secrets = [smtp.password] if smtp.password else []
    outcome, error, answer, next_request = "succeeded", "", {}, None
    pooled = _pool.get() is not None
    try:
        sender = sanitize_address(message.from_email, message.encoding or "utf-8")
        recipients = [sanitize_address(a, message.encoding or "utf-8") for a in message.recipients()]
        mime = message.message()  # Django adds a Message-ID where the call has no key (a test send)
        refused = _sendmail(server, pooled, sender, recipients, mime.as_bytes(linesep="\r\n"))
        answer = {"message_id": mime["Message-ID"], "accepted": len(recipients) - len(refused)}
        if refused:  # some recipients were refused, the others got it
            answer["refused"] = {address: code for address, (code, _) in refused.items()}
            later = {address.lower(): code for address, code in answer["refused"].items() if 400 <= code < 500}
            if later:  # retried, to those only: the others have it
                address, code = next(iter(later.items()))
                outcome, next_request = f"smtp_{code}", _narrowed(rendered, parts, set(later))
                error = f"The SMTP server refused {address} for now ({code}); the email is sent to it again."
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        outcome, error, answer = _refusal(code, text)
    except smtplib.SMTPResponseException as exc:  # sender refused, data refused, authentication failed
        outcome, error, answer = _refusal(exc.smtp_code, exc.smtp_error)
    except destinations.DestinationRefused as exc:
        outcome, error = "refused", str(exc.args[0] if exc.args else exc)
    except TimeoutError:
        outcome, error = "timedout", f"The SMTP server {smtp.host} did not answer within {smtp.timeout_s} s."
    except destinations.ConnectFailed as exc:
        kind = "timedout" if isinstance(exc.error, TimeoutError) else "error"
        outcome, error = kind, f"Could not connect to the SMTP server at {exc.peer}: {exc.error}."
    except (smtplib.SMTPException, ssl.SSLError, OSError, ValueError) as exc:
        outcome, error = "error", f"The email could not be sent through {smtp.host}: {exc}"
    error = mask(error, secrets)
    body = json.dumps(answer) if answer else ""
    return CallResult(
        outcome=outcome, request=shown, response_body=body, response_json=answer or None,
        latency_ms=int((time.monotonic() - started) * 1000), error=error, next_request=next_request,
    )  # fmt: skip


def default_from_problems(value: Any) -> dict[str, list[str]]:
    """A sender address such as `Acme <hello@acme.test>`."""
    if not isinstance(value, str) or not value.strip():
        return {"default_from": [_("the sender address is required, e.g. Acme <hello@acme.test>")]}
    found = getaddresses([value])
    if len(found) != 1 or "\n" in value or "\r" in value:
        return {"default_from": [_("one sender address, e.g. Acme <hello@acme.test>")]}
    try:
        validate_email(found[0][1])
    except ValidationError:
        return {"default_from": [_("%(address)s is not an email address") % {"address": repr(found[0][1])}]}
    return {}
