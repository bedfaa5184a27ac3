"""Issue 16, accounts: the login throttle's client address (8), user tokens that end (19)."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.authtoken.models import Token
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from tenants.throttling import ClientAddressThrottleMixin, client_address
from tests.conftest import token_client
from tests.factories import PASSWORD, UserFactory

TOKEN_URL = "/api/v1/auth/token/"
LIMIT = 10  # LOGIN_THROTTLE_RATE's default, 10/min


def _login_statuses(headers_for_attempt, count: int = LIMIT + 2, username=lambda i: f"nobody{i}") -> list[int]:
    """The answers to `count` wrong logins, the i-th sent with the request headers `headers_for_attempt(i)`."""
    client = APIClient()
    return [
        client.post(
            TOKEN_URL, {"username": username(i), "password": "wrong"}, format="json", **headers_for_attempt(i)
        ).status_code
        for i in range(count)
    ]


ROTATIONS = {
    "x-forwarded-for": lambda i: {"HTTP_X_FORWARDED_FOR": f"198.51.100.{i}"},
    "x-real-ip": lambda i: {"HTTP_X_REAL_IP": f"198.51.100.{i}"},
    "forwarded": lambda i: {"HTTP_FORWARDED": f"for=198.51.100.{i}"},
    "several-x-forwarded-for-entries": lambda i: {"HTTP_X_FORWARDED_FOR": f"198.51.100.{i}, 10.0.{i}.1, 127.0.0.1"},
    "garbage-x-forwarded-for": lambda i: {"HTTP_X_FORWARDED_FOR": f"not-an-address-{i}, ::zz, {'9' * 200}"},
    "x-forwarded-for-with-nul-and-newline": lambda i: {"HTTP_X_FORWARDED_FOR": f"198.51.100.{i}\x00\n1.1.1.{i}"},
    "all-of-them": lambda i: {
        "HTTP_X_FORWARDED_FOR": f"203.0.113.{i}",
        "HTTP_X_REAL_IP": f"203.0.113.{i}",
        "HTTP_X_CLIENT_IP": f"203.0.113.{i}",
        "HTTP_CF_CONNECTING_IP": f"203.0.113.{i}",
    },
}


@pytest.mark.parametrize("rotation", ROTATIONS.values(), ids=ROTATIONS.keys())
def test_rotating_forwarding_headers_does_not_escape_the_login_throttle(world, rotation):
    statuses = _login_statuses(rotation)
    assert statuses[:LIMIT] == [400] * LIMIT
    assert statuses[LIMIT:] == [429, 429]


def test_rotating_ipv6_addresses_of_one_network_does_not_escape_the_login_throttle(world):
    statuses = _login_statuses(lambda i: {"REMOTE_ADDR": f"2001:db8:1:2::{i + 1:x}"})
    assert statuses[LIMIT:] == [429, 429]
    # Another /64 is another client.
    assert _login_statuses(lambda i: {"REMOTE_ADDR": "2001:db8:1:3::1"}, count=1) == [400]


def test_an_untrusted_peer_is_the_client_whatever_it_forwards(world):
    client = APIClient()
    answers = [
        client.post(TOKEN_URL, {}, format="json", REMOTE_ADDR="192.0.2.9", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}")
        for i in range(LIMIT + 1)
    ]
    assert answers[-1].status_code == 429
    # Another socket address is another client: its own budget.
    assert client.post(TOKEN_URL, {}, format="json", REMOTE_ADDR="192.0.2.10").status_code == 400


@pytest.fixture
def behind_proxy(settings):
    settings.CONDUIT_TRUSTED_PROXIES = ["10.0.0.0/24", "2001:db8:ff::1"]


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget(world, behind_proxy):
    via_proxy = {"REMOTE_ADDR": "10.0.0.5"}
    statuses = _login_statuses(lambda i: {**via_proxy, "HTTP_X_FORWARDED_FOR": f"198.51.100.{i}"}, count=LIMIT + 5)
    assert statuses == [400] * (LIMIT + 5)
    statuses = _login_statuses(lambda i: {**via_proxy, "HTTP_X_FORWARDED_FOR": "198.51.100.200"})
    assert statuses[LIMIT:] == [429, 429]


def test_behind_a_trusted_proxy_what_the_client_wrote_before_it_is_ignored(world, behind_proxy):
    # The proxy appends the address it saw; the client's own entries stay on the left and rotate in vain.
    statuses = _login_statuses(
        lambda i: {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": f"198.51.100.{i}, garbage{i}, 203.0.113.7"}
    )
    assert statuses[LIMIT:] == [429, 429]


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}, "192.0.2.1"),
        ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}, "198.51.100.1"),
        ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "1.1.1.1, 198.51.100.1, 10.0.0.7"}, "198.51.100.1"),
        ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "198.51.100.1:4711"}, "198.51.100.1"),
        ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "[2001:db8::7]:4711"}, "2001:db8::7"),
        ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "::ffff:198.51.100.1"}, "198.51.100.1"),
        ({"REMOTE_ADDR": "2001:db8:ff::1", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}, "198.51.100.1"),
        # Nothing but garbage or other proxies to the right: the last proxy seen is the client.
        ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "198.51.100.1, nonsense"}, "10.0.0.5"),
        ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "10.0.0.6, 10.0.0.7"}, "10.0.0.6"),
        ({"REMOTE_ADDR": "10.0.0.5"}, "10.0.0.5"),
        ({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_REAL_IP": "198.51.100.1"}, "10.0.0.5"),
        ({"REMOTE_ADDR": "::ffff:10.0.0.5", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}, "198.51.100.1"),
        ({"REMOTE_ADDR": ""}, None),
    ],
)
def test_the_client_address_behind_a_trusted_proxy(behind_proxy, rf, meta, expected):
    request = rf.get("/")
    request.META.pop("REMOTE_ADDR")
    request.META.update(meta)
    assert client_address(request) == expected


def test_a_mistyped_trusted_proxy_is_reported_by_the_system_check(settings):
    from django.core.checks import run_checks

    settings.CONDUIT_TRUSTED_PROXIES = ["10.0.0.0/33"]
    assert "conduit.E010" in [error.id for error in run_checks()]


def test_admin_lockout_counts_the_forwarded_client_behind_a_trusted_proxy(world, behind_proxy, client):
    def login(forwarded: str, password: str = "wrong"):
        return client.post(
            "/admin/login/",
            {"username": "acme_admin", "password": password},
            REMOTE_ADDR="10.0.0.5",
            HTTP_X_FORWARDED_FOR=forwarded,
        )

    statuses = [login("198.51.100.1").status_code for _ in range(5)]
    assert statuses[-1] == 429
    assert login("198.51.100.1", PASSWORD).status_code == 429
    # Another client behind the same proxy is not locked out by the first one's failures.
    assert login("198.51.100.2", PASSWORD).status_code == 302


def test_admin_lockout_ignores_a_rotating_forwarded_for_from_an_untrusted_peer(world, client):
    statuses = [
        client.post(
            "/admin/login/", {"username": "acme_admin", "password": "wrong"}, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}"
        ).status_code
        for i in range(5)
    ]
    assert statuses[-1] == 429


def _views(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _views(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            view = getattr(pattern.callback, "cls", None)
            if view is not None:
                yield pattern, view


def test_every_throttle_of_every_api_view_counts_by_the_client_address():
    throttled = {}
    for pattern, view in _views(get_resolver().url_patterns):
        for throttle in getattr(view, "throttle_classes", []):
            throttled[f"{pattern.pattern} {throttle.__name__}"] = issubclass(throttle, ClientAddressThrottleMixin)
    assert throttled and all(throttled.values()), throttled
    # A throttle added without the mixin falls back to the socket's address, never the raw header.
    assert api_settings.NUM_PROXIES == 0


# --- 19: user tokens expire, and end at a password change and at logout

LOGOUT_URL = "/api/v1/auth/logout/"
WHOAMI = "/api/v1/orgs/acme/"  # any member may read it


def _login(username: str = "acme_admin", password: str = PASSWORD) -> dict:
    response = APIClient().post(TOKEN_URL, {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def _age_token(token: str, by: timedelta) -> None:
    Token.objects.filter(key=token).update(created=timezone.now() - by)


def test_a_fresh_login_gives_a_working_token_that_says_when_it_expires(world, settings):
    answer = _login()
    assert _client(answer["token"]).get(WHOAMI).status_code == 200
    expires_at = parse_datetime(answer["expires_at"])
    expected = timezone.now() + timedelta(seconds=settings.CONDUIT_USER_TOKEN_TTL_S)
    assert abs((expires_at - expected).total_seconds()) < 60
    assert settings.CONDUIT_USER_TOKEN_TTL_S == 7 * 24 * 3600


def test_an_expired_token_gets_401_and_a_new_login_gives_another_token(world, settings):
    token = _login()["token"]
    _age_token(token, timedelta(seconds=settings.CONDUIT_USER_TOKEN_TTL_S + 1))
    response = _client(token).get(WHOAMI)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    assert _client(token).get(WHOAMI).status_code == 401  # and it stays refused
    fresh = _login()["token"]
    assert fresh != token
    assert _client(fresh).get(WHOAMI).status_code == 200


def test_a_shorter_token_life_from_the_setting_applies_to_tokens_already_issued(world, settings):
    token = _login()["token"]
    _age_token(token, timedelta(minutes=2))
    assert _client(token).get(WHOAMI).status_code == 200
    settings.CONDUIT_USER_TOKEN_TTL_S = 60
    assert _client(token).get(WHOAMI).status_code == 401


def test_logging_in_again_does_not_extend_a_token(world):
    first = _login()
    _age_token(first["token"], timedelta(days=3))
    again = _login()
    assert again["token"] == first["token"]
    assert parse_datetime(again["expires_at"]) < parse_datetime(first["expires_at"])


def _set_password_in_code(user) -> None:
    user.set_password("a-new-password-42")
    user.save()


def _set_unusable_password(user) -> None:
    user.set_unusable_password()
    user.save(update_fields=["password"])


def _member_add_with_a_new_password(user) -> None:
    call_command("member_add", "globex", user.username, "--role", "viewer", "--password", "a-new-password-42")


def _admin_password_form_of_platform_staff(user) -> None:
    staff = UserFactory(username="staff", is_superuser=True, is_staff=True)
    client = APIClient()
    client.force_login(staff)
    url = reverse("admin:auth_user_password_change", args=[user.pk])
    form = {"password1": "a-new-password-42", "password2": "a-new-password-42", "usable_password": "true"}
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]


def _own_admin_password_change_form(user) -> None:
    client = APIClient()
    client.force_login(user)
    form = {"old_password": PASSWORD, "new_password1": "a-new-password-42", "new_password2": "a-new-password-42"}
    response = client.post(reverse("admin:password_change"), form)
    assert response.status_code == 302, response.content.decode()[:2000]


PASSWORD_CHANGES = {
    "set_password-and-save": _set_password_in_code,
    "set_unusable_password": _set_unusable_password,
    "member_add-command": _member_add_with_a_new_password,
    "admin-password-form": _admin_password_form_of_platform_staff,
    "own-password-change-in-the-admin": _own_admin_password_change_form,
}


@pytest.mark.parametrize("change", PASSWORD_CHANGES.values(), ids=PASSWORD_CHANGES.keys())
def test_after_a_password_change_the_old_token_gets_401(world, change):
    user = world.user("technical")
    token = _login(user.username)["token"]
    change(get_user_model().objects.get(pk=user.pk))
    assert _client(token).get(WHOAMI).status_code == 401
    if change is not _set_unusable_password:
        fresh = _login(user.username, "a-new-password-42")["token"]
        assert _client(fresh).get(WHOAMI).status_code == 200


def test_saving_a_user_without_a_new_password_keeps_the_token(world):
    user = world.user("technical")
    token = _login(user.username)["token"]
    user = get_user_model().objects.get(pk=user.pk)
    user.email = "tech@acme.test"
    user.save()
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    assert _client(token).get(WHOAMI).status_code == 200


def test_after_logout_the_token_gets_401(world):
    token = _login()["token"]
    client = _client(token)
    assert client.post(LOGOUT_URL).status_code == 204
    assert client.get(WHOAMI).status_code == 401
    assert client.post(LOGOUT_URL).status_code == 401
    fresh = _login()["token"]
    assert fresh != token and _client(fresh).get(WHOAMI).status_code == 200


def test_logout_of_one_user_leaves_other_users_logged_in(world):
    other = token_client(world.user("viewer"))
    assert _client(_login()["token"]).post(LOGOUT_URL).status_code == 204
    assert other.get(WHOAMI).status_code == 200


def test_logout_closes_a_browser_session_and_needs_a_login(world):
    assert APIClient().post(LOGOUT_URL).status_code == 401
    client = APIClient()
    client.force_login(world.user("admin"))
    assert client.get(WHOAMI).status_code == 200
    assert client.post(LOGOUT_URL).status_code == 204
    assert client.get(WHOAMI).status_code == 401


def test_the_schema_documents_logout_and_the_token_expiry(db, client):
    schema = client.get("/api/v1/schema/?format=json").json()
    assert "post" in schema["paths"]["/api/v1/auth/logout/"]
    assert "204" in schema["paths"]["/api/v1/auth/logout/"]["post"]["responses"]
    assert "expires_at" in schema["components"]["schemas"]["TokenResponse"]["properties"]
