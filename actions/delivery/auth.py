"""The auth types of SPEC section 2, and Google service accounts: validation, secret splitting, applying.

Secret fields are stored apart (encrypted) from the rest of the auth settings, so the
API and the admin can show the settings and say only whether each secret is set.
"""

import base64
import copy
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.core.cache import cache
from django.utils.translation import gettext as _

from actions.delivery import transport
from actions.delivery.rendering import HEADER_NAME, RESERVED_HEADERS, RenderedRequest, encode_json, validate_url
from config.common.json_values import walk_strings
from config.encryption import DecryptionError, decrypt_text, encrypt_text, fingerprint


@dataclass(frozen=True)
class AuthSpec:
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()  # dotted paths into the auth object
    optional_secrets: tuple[str, ...] = ()

    @property
    def all_secrets(self) -> tuple[str, ...]:
        return (*self.secrets, *self.optional_secrets)


AUTH_SPECS: dict[str, AuthSpec] = {
    "none": AuthSpec(),
    "basic": AuthSpec(required=("username",), secrets=("password",)),
    "bearer": AuthSpec(secrets=("token",)),
    "api_key": AuthSpec(required=("in", "name"), secrets=("value",)),
    "oauth2_client_credentials": AuthSpec(
        required=("token_url", "client_id"), optional=("scope", "audience"), secrets=("client_secret",)
    ),
    "token_endpoint": AuthSpec(
        required=("request", "token_path", "inject"),
        optional=("expires_in_path", "cache_seconds"),
        optional_secrets=("request.headers", "request.body"),
    ),
    "google_service_account": AuthSpec(optional=("scopes",), secrets=("service_account_json",)),
}
TOKEN_TYPES = {"oauth2_client_credentials", "token_endpoint", "google_service_account"}
GOOGLE_DEFAULT_SCOPES = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class AuthError(Exception):
    """A token could not be obtained; `message` is a sentence for a person."""

    def __init__(self, message: str, result: "transport.TransportResult | None" = None):
        super().__init__(message)
        self.message = message
        self.result = result


# --- dotted paths -------------------------------------------------------------------


def value_at(data: dict, path: str) -> Any:
    """The value at a dotted path of stored auth settings ("inject.name"), None when a part is missing."""
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _pop(data: dict, path: str) -> Any:
    *parents, last = path.split(".")
    for part in parents:
        data = data.get(part) if isinstance(data, dict) else None
        if data is None:
            return None
    return data.pop(last, None) if isinstance(data, dict) else None


def _put(data: dict, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[last] = value


# --- validation and storage ---------------------------------------------------------


def _check_token_request(request: Any, allow_http: bool) -> list[str]:
    if not isinstance(request, dict):
        return [_("request: must be an object with url, method, headers, body, body_type")]
    problems = []
    unknown = sorted(set(request) - {"url", "method", "headers", "body", "body_type"})
    if unknown:
        problems.append(_("request: unknown field %(field)s") % {"field": repr(unknown[0])})
    url_problems = validate_url(request.get("url"), allow_http=allow_http, declared=set())
    problems += [_("%(field)s: %(problem)s") % {"field": "request.url", "problem": p} for p in url_problems]
    if request.get("method", "POST") not in ("POST", "GET", "PUT"):
        problems.append(_("request.method: must be POST, GET or PUT"))
    headers = request.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        problems.append(_("request.headers: must be an object of header name to text"))
    else:
        for name, value in headers.items():
            if not HEADER_NAME.match(name) or name.lower() in RESERVED_HEADERS:
                problems.append(_("request.headers: %(name)s is not a header that may be set") % {"name": repr(name)})
            elif _has_control(value):  # the value may be a secret: never repeated
                problems.append(
                    _("request.headers: %(name)s holds a line break or another control character") % {"name": name}
                )
    if request.get("body_type", "json") not in ("json", "form"):
        problems.append(_('request.body_type: must be "json" or "form"'))
    if request.get("body_type") == "form" and not isinstance(request.get("body", {}), dict):
        problems.append(_("request.body: a form body must be an object"))
    return problems


def _has_control(text: str) -> bool:
    """CR, LF, NUL or another control character: in a header it would split or break the request."""
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def validate_auth(auth: Any, *, allow_http: bool, stored_type: str | None, stored_secrets: dict) -> list[str]:
    """Problems with an auth object as given by a user; secrets may be omitted to keep stored ones."""
    if not isinstance(auth, dict):
        return [_('must be an object such as {"type": "none"}')]
    kind = auth.get("type")
    if not isinstance(kind, str) or kind not in AUTH_SPECS:
        shown = {"type": json.dumps(kind), "types": ", ".join(AUTH_SPECS)}
        return [_("type: %(type)s is not an auth type; choose one of %(types)s") % shown]
    spec = AUTH_SPECS[kind]
    top_secrets = {p for p in spec.secrets if "." not in p}
    allowed = {"type", *spec.required, *spec.optional, *top_secrets}
    unknown = _("%(field)s: unknown field for %(type)s auth")
    problems = [unknown % {"field": key, "type": kind} for key in sorted(set(auth) - allowed)]
    required = _("%(field)s: required for %(type)s auth")
    for key in spec.required:
        if auth.get(key) in (None, ""):
            problems.append(required % {"field": key, "type": kind})
    for path in spec.secrets:
        given = value_at(auth, path)
        kept = stored_type == kind and value_at(stored_secrets, path)
        if given in (None, "") and not kept:
            problems.append(required % {"field": path, "type": kind})
        elif given not in (None, "") and not isinstance(given, str):
            problems.append(_("%(field)s: must be text") % {"field": path})
        elif isinstance(given, str) and path != "service_account_json" and _has_control(given):
            # Never the value itself: the message is shown and logged.
            problems.append(
                _("%(field)s: holds a line break or another control character; paste the value alone") % {"field": path}
            )
    for key in ("username", "client_id", "scope", "audience", "token_path", "expires_in_path", "name"):
        if key in auth and auth[key] is not None and not isinstance(auth[key], str):
            problems.append(_("%(field)s: must be text") % {"field": key})
        elif isinstance(auth.get(key), str) and _has_control(auth[key]):
            problems.append(_("%(field)s: holds a line break or another control character") % {"field": key})
    if kind == "api_key":
        if auth.get("in") not in ("header", "query"):
            problems.append(_('in: must be "header" or "query"'))
        name = auth.get("name")
        is_header = auth.get("in") == "header" and isinstance(name, str) and name
        if is_header and (not HEADER_NAME.match(name) or name.lower() in RESERVED_HEADERS):
            problems.append(_("name: %(name)s is not a header that may be set") % {"name": repr(name)})
    if kind == "oauth2_client_credentials" and auth.get("token_url"):
        url_problems = validate_url(auth["token_url"], allow_http=allow_http, declared=set())
        problems += [_("%(field)s: %(problem)s") % {"field": "token_url", "problem": p} for p in url_problems]
    if kind == "google_service_account":
        if "scopes" in auth and not isinstance(auth["scopes"], str):
            problems.append(_("scopes: must be text: scope URLs separated by spaces"))
        if isinstance(auth.get("service_account_json"), str) and auth["service_account_json"]:
            problems += service_account_problems(auth["service_account_json"], allow_http=allow_http)
    if kind == "token_endpoint":
        if auth.get("request") is not None:
            problems += _check_token_request(auth["request"], allow_http)
        if auth.get("expires_in_path") in (None, "") and auth.get("cache_seconds") in (None, ""):
            problems.append(_("expires_in_path: give expires_in_path or cache_seconds"))
        seconds = auth.get("cache_seconds")
        if seconds not in (None, "") and (not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 1):
            problems.append(_("cache_seconds: must be a whole number of seconds, at least 1"))
        inject = auth.get("inject")
        if inject is not None:
            if not isinstance(inject, dict) or inject.get("as") not in ("bearer", "header", "query"):
                problems.append(_('inject: must be {"as": "bearer"|"header"|"query", "name": ...}'))
            elif inject["as"] != "bearer" and not (isinstance(inject.get("name"), str) and inject["name"]):
                problems.append(_("inject.name: required to inject the token as a %(as)s") % {"as": inject["as"]})
    return problems


def service_account_problems(text: str, *, allow_http: bool) -> list[str]:
    """What is wrong with a pasted Google service-account key file."""
    where = {"field": "service_account_json"}
    try:
        data = json.loads(text)
    except ValueError:
        return [_("%(field)s: not JSON; paste the whole key file Google gave (it starts with {)") % where]
    if not isinstance(data, dict) or data.get("type") != "service_account":
        return [_('%(field)s: not a service-account key file (its "type" must be "service_account")') % where]
    problems = [_("%(field)s: the key file has no %(key)s") % {**where, "key": key}
                for key in ("client_email", "private_key", "token_uri")
                if not isinstance(data.get(key), str) or not data[key]]  # fmt: skip
    if not problems:
        try:
            key = load_pem_private_key(data["private_key"].encode(), password=None)
        except (ValueError, TypeError):
            problems.append(_("%(field)s: its private_key is not a PEM private key") % where)
        else:
            if not isinstance(key, rsa.RSAPrivateKey):  # Google signs service accounts' assertions RS256
                problems.append(_("%(field)s: its private_key is not an RSA key") % where)
        problems += [_("%(field)s: token_uri %(problem)s") % {**where, "problem": p}
                     for p in validate_url(data["token_uri"], allow_http=allow_http, declared=set())]  # fmt: skip
    return problems


def _google_assertion(key_file: dict, scopes: str) -> str:
    """The signed JWT a service account exchanges for an access token (RFC 7523, Google's form)."""
    now = int(time.time())
    claims = {"iss": key_file["client_email"], "scope": scopes, "aud": key_file["token_uri"], "iat": now,
              "exp": now + 3600}  # fmt: skip
    headers = {"kid": key_file["private_key_id"]} if key_file.get("private_key_id") else None
    return jwt.encode(claims, key_file["private_key"], algorithm="RS256", headers=headers)


def split_auth(auth: dict, *, stored_type: str | None, stored_secrets: dict) -> tuple[str, dict, dict]:
    """(type, non-secret config, secrets). Omitted secrets keep their stored value."""
    kind = auth["type"]
    spec = AUTH_SPECS[kind]
    config = copy.deepcopy({k: v for k, v in auth.items() if k != "type"})
    secrets: dict = {}
    for path in spec.all_secrets:
        given = _pop(config, path)
        if given in (None, "") and stored_type == kind:
            given = value_at(stored_secrets, path)
        if given not in (None, ""):
            _put(secrets, path, given)
    return kind, config, secrets


def public_auth(kind: str, config: dict, secrets: dict) -> dict:
    """The auth settings as shown to technical users: each secret only as `<name>_set`."""
    shown = {"type": kind, **copy.deepcopy(config)}
    spec = AUTH_SPECS.get(kind, AuthSpec())
    for path in spec.all_secrets:
        _put(shown, f"{path}_set", value_at(secrets, path) not in (None, ""))
    return shown


def full_auth(kind: str, config: dict, secrets: dict) -> dict:
    merged = {"type": kind, **copy.deepcopy(config)}
    spec = AUTH_SPECS.get(kind, AuthSpec())
    for path in spec.all_secrets:
        value = value_at(secrets, path)
        if value is not None:
            _put(merged, path, value)
    return merged


# --- applying auth to a call --------------------------------------------------------


def _append_query(url: str, name: str, value: str) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode([(name, value)])


def _token_cache_key(action: Any) -> str:
    # The action's origin too: a token fetched while it called one host is never sent to another.
    origin = urlsplit(action.url or "")[:2]
    settings_ = json.dumps([action.auth_type, action.auth_config, action.auth_secrets, origin], sort_keys=True)
    return f"conduit:token:{action.pk}:{fingerprint(settings_)[:32]}"


def _cached_token(key: str) -> str | None:
    """The cached token, stored encrypted like every other secret; one no key opens (the keys were rotated,
    or the entry was written by someone else) is a miss, and a new token is fetched."""
    stored = cache.get(key)
    if not isinstance(stored, str) or not stored:
        return None
    try:
        return decrypt_text(stored, label="a cached access token")
    except DecryptionError:
        return None


def _cache_token(key: str, token: str, ttl: int) -> None:
    cache.set(key, encrypt_text(token), ttl)


def _parse_json(result: "transport.TransportResult") -> Any:
    try:
        return json.loads(result.body)
    except (ValueError, UnicodeDecodeError):
        return None


def _fetch_token(action: Any, timeout_s: float) -> tuple[str, int]:
    """Ask the token endpoint; return (token, seconds to cache it)."""
    auth = full_auth(action.auth_type, action.auth_config, action.auth_secrets)
    if action.auth_type == "google_service_account":
        key_file = json.loads(auth["service_account_json"])
        try:
            assertion = _google_assertion(key_file, auth.get("scopes") or GOOGLE_DEFAULT_SCOPES)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise AuthError(f"The service-account key could not sign a token request: {type(exc).__name__}.") from None
        url, method, token_path, expires_path, fixed = key_file["token_uri"], "POST", "access_token", "expires_in", None
        headers = [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")]
        body = urlencode({"grant_type": JWT_BEARER, "assertion": assertion}).encode()
    elif action.auth_type == "oauth2_client_credentials":
        form = {
            "grant_type": "client_credentials",
            "client_id": auth["client_id"],
            "client_secret": auth["client_secret"],
        }
        for key in ("scope", "audience"):
            if auth.get(key):
                form[key] = auth[key]
        url, method, token_path, expires_path, fixed = (
            auth["token_url"],
            "POST",
            "access_token",
            "expires_in",
            None,
        )
        headers = [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")]
        body: bytes | None = urlencode(form).encode()
    else:
        request = auth["request"]
        url, method = request["url"], request.get("method", "POST")
        token_path, expires_path, fixed = (
            auth["token_path"],
            auth.get("expires_in_path"),
            auth.get("cache_seconds"),
        )
        headers = [("Accept", "application/json"), *request.get("headers", {}).items()]
        raw = request.get("body")
        if raw is None or method == "GET":
            body = None
        elif request.get("body_type", "json") == "form":
            body = urlencode({k: str(v) for k, v in raw.items()}).encode()
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        else:
            body = encode_json(raw)
            headers.append(("Content-Type", "application/json"))
    host = urlsplit(url).hostname
    result = transport.send(
        transport.OutboundRequest(method=method, url=url, headers=headers, body=body, timeout_s=timeout_s)
    )
    if result.status_code is None:
        raise AuthError(f"Could not get an access token from {host}: {result.error}", result)
    if result.outcome != "succeeded":
        raise AuthError(f"Could not get an access token from {host}: it answered HTTP {result.status_code}.", result)
    data = _parse_json(result)
    token = value_at(data, token_path) if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise AuthError(f"The token endpoint {host} answered without a token at {token_path!r}.", result)
    seconds = fixed
    if seconds is None and expires_path:
        expires = value_at(data, expires_path)
        seconds = int(expires) if isinstance(expires, int | float) and not isinstance(expires, bool) else 3600
    # Cached until a minute before it expires (SPEC section 2).
    return token, max(int(seconds or 3600) - 60, 1)


_fetches: dict[str, threading.Lock] = {}
_fetches_guard = threading.Lock()
_fetched_at: dict[str, float] = {}  # token key -> when this process last got a new token (monotonic)


def get_token(action: Any, *, refresh: bool = False, asked_at: float = 0.0, timeout_s: float = 10.0) -> str:
    """The action's access token from the cache, else from its token endpoint.

    Single-flight: calls in flight together that need a new token wait for one request. With
    `refresh` (the provider refused the token the call got at `asked_at`), a token fetched since
    is taken as it is; only a call whose token is still the newest asks for another.
    """
    key = _token_cache_key(action)
    if not refresh:
        token = _cached_token(key)
        if token:
            return token
    with _fetches_guard:
        lock = _fetches.setdefault(key, threading.Lock())
    with lock:
        token = _cached_token(key)
        if token and (not refresh or _fetched_at.get(key, float("-inf")) > asked_at):
            return token
        token, ttl = _fetch_token(action, timeout_s)
        _cache_token(key, token, ttl)
        _fetched_at[key] = time.monotonic()
    return token


def apply_auth(action: Any, request: RenderedRequest, *, refresh: bool = False, asked_at: float = 0.0) -> list[str]:
    """Add the action's credentials to `request`; return the secret strings to mask in records.

    `refresh`: the token given to this call at `asked_at` (time.monotonic()) was refused."""
    kind = action.auth_type
    secrets = action.auth_secrets or {}
    to_mask = [text for _, text in walk_strings(secrets) if len(text) >= 4]  # shorter ones would mask too much
    spec = AUTH_SPECS.get(kind, AuthSpec())
    missing = [path for path in spec.secrets if value_at(secrets, path) in (None, "")]
    if missing:
        raise AuthError(f"The action's {kind} auth has no {missing[0]} set; enter it before calling.")
    timeout_s = action.timeout_ms / 1000
    before = len(request.headers)
    if kind == "basic":
        pair = f"{action.auth_config['username']}:{secrets['password']}"
        encoded = base64.b64encode(pair.encode()).decode()
        request.headers.append(("Authorization", f"Basic {encoded}"))
        to_mask.append(encoded)
    elif kind == "bearer":
        request.headers.append(("Authorization", f"Bearer {secrets['token']}"))
    elif kind == "api_key":
        if action.auth_config["in"] == "header":
            request.headers.append((action.auth_config["name"], secrets["value"]))
        else:
            request.url = _append_query(request.url, action.auth_config["name"], secrets["value"])
    elif kind in TOKEN_TYPES:
        token = get_token(action, refresh=refresh, asked_at=asked_at, timeout_s=timeout_s)
        to_mask.append(token)
        inject = action.auth_config.get("inject", {"as": "bearer"}) if kind == "token_endpoint" else {"as": "bearer"}
        if inject["as"] == "bearer":
            request.headers.append(("Authorization", f"Bearer {token}"))
        elif inject["as"] == "header":
            request.headers.append((inject["name"], token))
        else:
            request.url = _append_query(request.url, inject["name"], token)
    if any(_has_control(value) for _, value in request.headers[before:]):
        # Stored before this check, or a token a provider answered: refused here, never sent,
        # and never in an exception's text (http.client's own would hold the value).
        source = "token the token endpoint answered" if kind in TOKEN_TYPES else f"{kind} credential"
        raise AuthError(f"The {source} holds a line break or another control character; it was not sent.")
    return to_mask
