"""One call of an action: render, authenticate, send, refresh a token once on 401, mask.

The test request uses it now; invocations (the runtime) use the same path.
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actions.delivery import transport
from actions.delivery.auth import TOKEN_TYPES, AuthError, apply_auth
from actions.delivery.emails import render_email, send_email
from actions.delivery.masking import mask
from actions.delivery.rendering import RenderedRequest, RenderError, render_request
from actions.delivery.results import CallResult
from actions.delivery.secret_references import SecretMissing, unseal
from actions.delivery.signing import delivery_headers
from actions.models import Action
from config.common.json_values import first_unstorable, map_strings

USER_AGENT = "Conduit/0.1"
RECORDED_BODY_BYTES = 64 * 1024


def render(action: Action, values: dict[str, Any]) -> RenderedRequest:
    """The request (or, for an email action, the email) for these values. Raises RenderError.

    An action saved before its templates were bounded may nest too deep to render: that call
    fails with a RenderError (and only that call), not with the stack.
    """
    try:
        if action.kind == Action.Kind.EMAIL:
            return render_email(action, values)
        return render_request(
            method=action.method, url=action.url, query=action.query, headers=action.headers,
            body=action.body, parameters=action.parameters, values=values, body_type=action.body_type,
            organization_id=action.organization_id,
        )  # fmt: skip
    except RecursionError:
        why = "the action's templates are nested too deep to render; edit them (at most 32 levels)"
        raise RenderError({"body": why}) from None


def shown_request(
    action: Action, request: RenderedRequest, secrets: list[str], named: dict[str, str] | None = None
) -> dict:
    """The request as people see it: secrets masked, secret values as {{secrets.NAME}}."""
    body = request.body.decode("utf-8", errors="replace") if request.body is not None else None
    return {
        "method": request.method,
        "url": mask(request.url, secrets, named),
        "headers": [[name, mask(value, secrets, named)] for name, value in request.headers],
        "body": mask(body, secrets, named) if body is not None else None,
    }


@dataclass
class PreparedCall:
    """A call with its secret values in and its delivery headers made: authenticated, it can go."""

    action: Action
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes | None
    named: dict[str, str]  # secret values -> their names, for masking
    extra: list[tuple[str, str]]  # User-Agent, Idempotency-Key, signature
    request: RenderedRequest | None = None  # with its auth, once authenticated
    secrets: list[str] = field(default_factory=list)  # the auth's credentials, masked in what comes back

    def outbound(self) -> transport.OutboundRequest:
        action, request = self.action, self.request
        assert request is not None, "authenticate() first"
        certificate = None
        if action.client_certificate and action.client_key:
            certificate = (action.client_certificate, action.client_key)
        return transport.OutboundRequest(
            method=request.method, url=request.url, headers=[*request.headers, *self.extra],
            body=request.body, timeout_s=action.timeout_ms / 1000, client_certificate=certificate,
        )  # fmt: skip


def prepare_call(action: Action, rendered: RenderedRequest, *, idempotency_key: str) -> PreparedCall | CallResult:
    """The secret values filled in (at send time) and the delivery headers; a CallResult if it cannot go."""
    try:
        url, headers, body, named = unseal(
            organization_id=action.organization_id, url=rendered.url, headers=list(rendered.headers),
            body=rendered.body, places=rendered.secrets,
        )  # fmt: skip
    except SecretMissing as exc:
        return CallResult(outcome="error", request=shown_request(action, rendered, []), error=str(exc))
    # Signed here, after the secret values are in: the signature covers the bytes actually sent.
    extra = [("User-Agent", USER_AGENT), *delivery_headers(action, idempotency_key, body)]
    return PreparedCall(action, rendered.method, url, headers, body, named, extra)


def authenticate(prepared: PreparedCall, *, refresh: bool = False, asked_at: float = 0.0) -> CallResult | None:
    """The action's auth on a fresh copy of the request; a CallResult when it failed."""
    action, named = prepared.action, prepared.named
    request = RenderedRequest(prepared.method, prepared.url, list(prepared.headers), prepared.body)
    try:
        prepared.secrets = apply_auth(action, request, refresh=refresh, asked_at=asked_at)
    except AuthError as exc:
        result, secrets = exc.result, prepared.secrets
        return CallResult(
            outcome="error", request=shown_request(action, request, secrets, named),
            error=mask(exc.message, secrets, named), latency_ms=result.latency_ms if result else 0, auth_failed=True,
        )  # fmt: skip
    prepared.request = request
    return None


def _parsed(body: bytes) -> Any:
    """A response body as JSON, or None: not JSON, or nested deeper than any JSON we store."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return parsed if first_unstorable(parsed) is None else None


def call_action(
    action: Action, rendered: RenderedRequest, *, idempotency_key: str, before_send: Callable[[], None] | None = None
) -> CallResult:
    """Send an already rendered request with the action's auth, its Idempotency-Key and, with a signing
    secret, its signature. Never raises for the network.

    `before_send` runs right before the request goes (the runtime takes rate limits there); what it
    raises stops the call."""
    if action.kind == Action.Kind.EMAIL:
        if before_send is not None:
            before_send()
        return send_email(action, rendered, idempotency_key, shown_request(action, rendered, []))
    prepared = prepare_call(action, rendered, idempotency_key=idempotency_key)
    if isinstance(prepared, CallResult):
        return prepared
    asked_at = 0.0
    for attempt in ("first", "refresh"):
        if failed := authenticate(prepared, refresh=attempt == "refresh", asked_at=asked_at):
            return failed
        asked_at = asked_at or time.monotonic()  # a token fetched after this one is newer than the one refused
        if before_send is not None and attempt == "first":
            before_send()
        result = transport.send(prepared.outbound())
        # A cached token may have been revoked early: fetch a new one once (SPEC section 2).
        if not (result.status_code == 401 and action.auth_type in TOKEN_TYPES and attempt == "first"):
            break
    return finish_call(prepared, result)


def finish_call(prepared: PreparedCall, result: transport.TransportResult) -> CallResult:
    """What came back, as stored: credentials masked wherever the provider echoed them."""
    action, secrets, named = prepared.action, prepared.secrets, prepared.named
    request = prepared.request
    assert request is not None
    # PostgreSQL stores no NUL in text: a provider's NUL would make the result unwritable.
    body_text = result.body[:RECORDED_BODY_BYTES].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    parsed = _parsed(result.body) if result.body and not result.truncated else None
    if parsed is not None and (secrets or named):
        # A provider that echoes a credential: masked in the decoded strings, whatever escapes the
        # text used (`\/`, `\u0074`), and the body recorded as the masked JSON when anything was hidden.
        masked = map_strings(parsed, lambda text: mask(text, secrets, named), keys=True)
        if masked != parsed:
            parsed, body_text = masked, json.dumps(masked, ensure_ascii=False)[:RECORDED_BODY_BYTES]
    return CallResult(
        outcome=result.outcome, request=shown_request(action, request, secrets, named), status_code=result.status_code,
        response_headers={name: mask(value, secrets, named) for name, value in result.headers.items()},
        response_body=mask(body_text, secrets, named), response_json=parsed,
        truncated=result.truncated or len(result.body) > RECORDED_BODY_BYTES,
        latency_ms=result.latency_ms, error=mask(result.error, secrets, named),
    )  # fmt: skip
