"""The built-in email action: templates rendered like an HTTP action's, sent through Django's
SMTP backend with the organization's SMTP settings.

An email is an invocation like any other. Its rendered request is `SMTP smtp://host:port`
with From, To, Cc, Reply-To and Subject as headers and the text and HTML parts as a JSON
body, so replay, the invocation pages and the runtime need nothing of their own. A refusal
by the server is the outcome `smtp_<code>`: 4xx is temporary and retried, 5xx is not.
"""

import json
import smtplib
import socket
import ssl
import time
from email.utils import getaddresses
from typing import Any

from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import sanitize_address
from django.core.validators import validate_email
from django.utils.html import escape

from actions import transport
from actions.calling import CallResult
from actions.models import Action, EmailSettings
from actions.rendering import (
    PLACEHOLDER,
    RenderedRequest,
    RenderError,
    _placeholder_problems,
    encode_json,
    resolve_values,
    to_json_value,
    to_text,
)

TEMPLATE_KEYS = ("to", "cc", "reply_to", "from", "subject", "text", "html")
ADDRESS_KEYS = ("to", "cc", "reply_to")
HEADER_OF = {"from": "From", "to": "To", "cc": "Cc", "reply_to": "Reply-To", "subject": "Subject"}


# --- validation at save time --------------------------------------------------------


def validate_email_templates(email: Any, *, declared: set[str]) -> list[str]:
    """Problems with an email action's templates, each naming its part."""
    if not isinstance(email, dict):
        return ['must be an object with to, subject and text (or html), e.g. {"to": "{{email}}", ...}']
    problems = [f"{key}: unknown part of an email; use {', '.join(TEMPLATE_KEYS)}" for key in email
                if key not in TEMPLATE_KEYS]  # fmt: skip
    for key in TEMPLATE_KEYS:
        value = email.get(key)
        if value is not None and not isinstance(value, str):
            problems.append(f"{key}: must be text")
        elif value:
            problems += _placeholder_problems(value, declared, key)
    for key in ("to", "subject"):
        if not email.get(key):
            problems.append(f"{key}: required for an email")
    if not email.get("text") and not email.get("html"):
        problems.append("text: give a plain-text body, an HTML body, or both")
    if "\n" in (email.get("subject") or "") or "\n" in (email.get("from") or ""):
        problems.append("subject: must be on one line")
    return problems


# --- rendering ----------------------------------------------------------------------


def _addresses(template: str, values: dict[str, Any], key: str) -> list[str]:
    whole = PLACEHOLDER.fullmatch(template.strip())
    if whole and isinstance(values[whole.group(1)], list):  # a list parameter: one address per item
        items = [to_text(v) for v in to_json_value(values[whole.group(1)])]
    else:
        items = [PLACEHOLDER.sub(lambda m: to_text(values[m.group(1)]), template)]
    addresses = []
    for item in items:
        if "\r" in item or "\n" in item:
            raise RenderError({key: f"{key}: an address holds a line break"})
        for name, address in getaddresses([item]):
            if not address:
                continue
            try:
                validate_email(address)
            except ValidationError:
                raise RenderError({key: f"{key}: {address!r} is not an email address"}) from None
            addresses.append(f"{name} <{address}>" if name else address)
    return addresses


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
    sender = text("from") or smtp.default_from
    if "\r" in sender or "\n" in sender or len([a for _, a in getaddresses([sender]) if a]) != 1:
        raise RenderError({"from": f"from: {sender!r} is not one sender address"})
    try:
        validate_email(getaddresses([sender])[0][1])
    except ValidationError:
        raise RenderError({"from": f"from: {sender!r} is not an email address"}) from None
    if "\r" in subject or "\n" in subject:
        raise RenderError({"subject": "subject: a value put a line break in it"})
    headers = [("From", sender), ("To", ", ".join(to))]
    for key in ("cc", "reply_to"):
        found = _addresses(email.get(key) or "", resolved, key)
        if found:
            headers.append((HEADER_OF[key], ", ".join(found)))
    headers.append(("Subject", subject))
    # Values are escaped in the HTML part: a profile's name must not become markup.
    body = {"text": text("text"), "html": text("html", escape) if email.get("html") else None}
    return RenderedRequest("SMTP", f"smtp://{smtp.host}:{smtp.port}", headers, encode_json(body))


# --- sending ------------------------------------------------------------------------


class _GuardedSMTP(smtplib.SMTP):
    """smtplib connecting through outbound safety: the resolved IP is checked at connection time."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return transport.connect_allowed(host, port, timeout=timeout)


class _GuardedSMTPSSL(smtplib.SMTP_SSL):
    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = transport.connect_allowed(host, port, timeout=timeout)
        return self.context.wrap_socket(sock, server_hostname=self._host)


class GuardedEmailBackend(EmailBackend):
    """Django's SMTP backend, with the connection made through `transport.connect_allowed`."""

    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        return _GuardedSMTPSSL if self.use_ssl else _GuardedSMTP


def _header(rendered: RenderedRequest, name: str) -> str:
    return rendered.header(name) or ""


def _split(value: str) -> list[str]:
    return [f"{n} <{a}>" if n else a for n, a in getaddresses([value]) if a]


def _refusal(code: int, message: Any) -> tuple[str, str, dict]:
    text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
    return f"smtp_{code}", f"The SMTP server refused: {code} {text}", {"smtp_code": code, "message": text}


def send_email(action: Action, rendered: RenderedRequest, idempotency_key: str | None, shown: dict) -> CallResult:
    """Send the rendered email. Never raises for the network; `shown` is the request as recorded."""
    smtp = EmailSettings.objects.filter(organization_id=action.organization_id).first()
    if smtp is None:
        return CallResult(outcome="error", request=shown, error="This organization has no SMTP settings.")
    parts = json.loads(rendered.body or b"{}")
    headers = {"Message-ID": f"<{idempotency_key}@conduit>"} if idempotency_key else {}
    message = EmailMultiAlternatives(
        subject=_header(rendered, "Subject"), body=parts.get("text") or "", from_email=_header(rendered, "From"),
        to=_split(_header(rendered, "To")), cc=_split(_header(rendered, "Cc")),
        reply_to=_split(_header(rendered, "Reply-To")), headers=headers,
    )  # fmt: skip
    if parts.get("html"):
        message.attach_alternative(parts["html"], "text/html")
    backend = GuardedEmailBackend(
        host=smtp.host, port=smtp.port, username=smtp.username or None, password=smtp.password or None,
        use_tls=smtp.security == EmailSettings.Security.STARTTLS, use_ssl=smtp.security == EmailSettings.Security.SSL,
        timeout=smtp.timeout_s, fail_silently=False,
    )  # fmt: skip
    started = time.monotonic()
    secrets = [smtp.password] if smtp.password else []
    outcome, error, answer = "succeeded", "", {}
    try:
        backend.open()
        try:
            sender = sanitize_address(message.from_email, message.encoding or "utf-8")
            recipients = [sanitize_address(a, message.encoding or "utf-8") for a in message.recipients()]
            mime = message.message()  # Django adds a Message-ID where the call has no key (a test send)
            refused = backend.connection.sendmail(sender, recipients, mime.as_bytes(linesep="\r\n"))
        finally:
            backend.close()
        answer = {"message_id": mime["Message-ID"], "accepted": len(recipients) - len(refused)}
        if refused:  # some recipients were refused, the others got it
            answer["refused"] = {address: code for address, (code, _) in refused.items()}
            later = [(address, code) for address, code in answer["refused"].items() if 400 <= code < 500]
            if later:  # a temporary refusal is retried: the same Message-ID lets the others' copy be dropped
                address, code = later[0]
                outcome = f"smtp_{code}"
                error = f"The SMTP server refused {address} for now ({code}); the email is sent again."
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        outcome, error, answer = _refusal(code, text)
    except smtplib.SMTPResponseException as exc:  # sender refused, data refused, authentication failed
        outcome, error, answer = _refusal(exc.smtp_code, exc.smtp_error)
    except transport.DestinationRefused as exc:
        outcome, error = "refused", str(exc.args[0] if exc.args else exc)
    except TimeoutError:
        outcome, error = "timedout", f"The SMTP server {smtp.host} did not answer within {smtp.timeout_s} s."
    except transport.ConnectFailed as exc:
        kind = "timedout" if isinstance(exc.error, TimeoutError) else "error"
        outcome, error = kind, f"Could not connect to the SMTP server at {exc.peer}: {exc.error}."
    except (smtplib.SMTPException, ssl.SSLError, OSError, ValueError) as exc:
        outcome, error = "error", f"The email could not be sent through {smtp.host}: {exc}"
    for secret in secrets:
        error = error.replace(secret, "********")
    body = json.dumps(answer) if answer else ""
    return CallResult(
        outcome=outcome, request=shown, response_body=body, response_json=answer or None,
        latency_ms=int((time.monotonic() - started) * 1000), error=error,
    )  # fmt: skip


def default_from_problems(value: Any) -> dict[str, list[str]]:
    """A sender address such as `Acme <hello@acme.test>`."""
    if not isinstance(value, str) or not value.strip():
        return {"default_from": ["the sender address is required, e.g. Acme <hello@acme.test>"]}
    found = getaddresses([value])
    if len(found) != 1 or "\n" in value:
        return {"default_from": ["one sender address, e.g. Acme <hello@acme.test>"]}
    try:
        validate_email(found[0][1])
    except ValidationError:
        return {"default_from": [f"{found[0][1]!r} is not an email address"]}
    return {}
