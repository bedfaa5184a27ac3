"""The per-host concurrency cap: `max_concurrent` on endpoint limits (API, admin, service) and the
calls open now per host and worker, in the admin and the metrics API (SPEC section 10)."""

import re
import time
import uuid
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.core.exceptions import ValidationError
from django.urls import reverse

from actions.models import EndpointLimit, InFlightCounter
from actions.runtime import concurrency
from actions.selectors import calls_in_flight
from actions.services.endpoint_limits import endpoint_limit_create
from tenants.services import api_key_create
from tests.actions.helpers import make_action
from tests.conftest import key_client, token_client
from tests.factories import UserFactory

LIMITS = "/api/v1/orgs/{org}/endpoint-limits/"
CHANGELIST = "admin:actions_endpointlimit_changelist"
ADD = "admin:actions_endpointlimit_add"
COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}\b|\brgba?\(|\bhsla?\(")


def _limits(org: str = "acme") -> str:
    return LIMITS.format(org=org)


def _open(organization, host: str, worker: str, calls: int, cap: int = 1000) -> int:
    """Calls a worker takes to a host, as the runtime would before sending them."""
    return concurrency.change(concurrency.key(organization.pk, host), worker, take=calls, cap=cap, ttl_s=60)


# --- the API ------------------------------------------------------------------------


def test_a_limit_may_give_only_its_concurrency_cap(world):
    response = token_client(world.user("technical")).post(
        _limits(), {"host": "api.example.com", "max_concurrent": 25}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body == {"id": body["id"], "host": "api.example.com", "calls": 300_000, "period_s": 60, "max_concurrent": 25}
    limit = EndpointLimit.objects.get(pk=body["id"])
    assert (limit.organization_id, limit.max_concurrent, limit.calls, limit.period_s) == (
        world.acme.pk,
        25,
        300_000,
        60,
    )


def test_a_limit_without_a_cap_gets_400_open_at_once(world):
    response = token_client(world.user("admin")).post(
        _limits(), {"host": "api.example.com", "calls": 10}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["max_concurrent"] == 400
    assert response.json()["period_s"] == 60


@pytest.mark.parametrize(
    "change, field",
    [({"max_concurrent": 0}, "max_concurrent"), ({"max_concurrent": -1}, "max_concurrent"),
     ({"max_concurrent": "x"}, "max_concurrent"), ({"max_concurrent": True}, "max_concurrent"),
     ({"max_concurrent": 100_001}, "max_concurrent"), ({"max_concurrent": 2.5}, "max_concurrent"),
     ({"max_concurrent": None}, "max_concurrent"), ({"concurrency": 5}, "concurrency")],
)  # fmt: skip
def test_bad_concurrency_cap_is_400_naming_the_field(world, change, field):
    body = {"host": "api.example.com", **change}
    response = token_client(world.user("technical")).post(_limits(), body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not EndpointLimit.objects.exists()


def test_the_highest_and_lowest_caps_are_accepted(world):
    client = token_client(world.user("technical"))
    low = client.post(_limits(), {"host": "a.example.com", "max_concurrent": 1}, format="json")
    high = client.post(_limits(), {"host": "b.example.com", "max_concurrent": 100_000}, format="json")
    assert (low.status_code, high.status_code) == (201, 201)
    assert sorted(EndpointLimit.objects.values_list("max_concurrent", flat=True)) == [1, 100_000]


def test_the_cap_is_changed_by_patch_and_put_and_a_bad_one_changes_nothing(world):
    client = token_client(world.user("technical"))
    created = client.post(_limits(), {"host": "api.example.com", "calls": 50, "period_s": 10}, format="json").json()
    detail = f"{_limits()}{created['id']}/"

    patched = client.patch(detail, {"max_concurrent": 12}, format="json")
    assert patched.status_code == 200, patched.content
    assert patched.json() == {**created, "max_concurrent": 12}  # the other numbers stay

    refused = client.patch(detail, {"max_concurrent": 100_001}, format="json")
    assert refused.status_code == 400 and "max_concurrent" in refused.json()["errors"]
    assert EndpointLimit.objects.get().max_concurrent == 12

    body = {"host": "api.example.com", "calls": 7, "period_s": 1, "max_concurrent": 3}
    replaced = client.put(detail, body, format="json")
    assert replaced.status_code == 200, replaced.content
    assert replaced.json() == {"id": created["id"], **body}
    assert client.get(detail).json()["max_concurrent"] == 3


@pytest.mark.parametrize("value", [0, -1, "7", True, 100_001, None, 1.0])
def test_the_service_refuses_what_is_not_a_whole_number_from_1_to_100000(world, value):
    with pytest.raises(ValidationError) as raised:
        endpoint_limit_create(organization=world.acme, data={"host": "api.example.com", "max_concurrent": value})
    assert list(raised.value.message_dict) == ["max_concurrent"]
    assert not EndpointLimit.objects.exists()


@pytest.mark.parametrize("role", ["marketer", "viewer"])
def test_marketer_and_viewer_cannot_read_or_set_endpoint_limits(world, role):
    EndpointLimit.objects.create(organization=world.acme, host="api.example.com", max_concurrent=5)
    client = token_client(world.user(role))
    assert client.get(_limits()).status_code == 403
    created = client.post(_limits(), {"host": "other.example.com", "max_concurrent": 5}, format="json")
    assert created.status_code == 403
    assert EndpointLimit.objects.count() == 1


def test_another_organizations_limits_are_404(world):
    limit = EndpointLimit.objects.create(organization=world.acme, host="api.example.com", max_concurrent=5)
    client = token_client(world.globex_admin.user)
    assert client.get(_limits()).status_code == 404
    assert client.patch(f"{_limits()}{limit.pk}/", {"max_concurrent": 9}, format="json").status_code == 404
    own = token_client(world.user("admin")).patch(f"{_limits('acme')}{limit.pk}/", {"max_concurrent": 9}, format="json")
    assert own.status_code == 200
    assert token_client(world.globex_admin.user).get(f"{_limits('globex')}{limit.pk}/").status_code == 404


# --- the admin form -----------------------------------------------------------------


def test_admin_form_saves_the_cap(world, client):
    client.force_login(world.user("technical"))
    page = client.get(reverse(ADD)).content.decode()
    assert "Calls open at once" in page and "across every worker" in page
    saved = client.post(
        reverse(ADD), {"host": "api.example.com", "calls": "100", "period_s": "60", "max_concurrent": "8"}
    )
    assert saved.status_code == 302
    limit = EndpointLimit.objects.get()
    assert (limit.organization_id, limit.max_concurrent) == (world.acme.pk, 8)

    change = reverse("admin:actions_endpointlimit_change", args=[limit.pk])
    changed = client.post(change, {"host": "api.example.com", "calls": "100", "period_s": "60", "max_concurrent": "9"})
    assert changed.status_code == 302
    assert EndpointLimit.objects.get().max_concurrent == 9
    listed = client.get(reverse(CHANGELIST)).content.decode()
    assert "Calls open at once" in listed and ">9<" in listed


@pytest.mark.parametrize("value", ["0", "-1", "x", "100001", ""])
def test_admin_form_shows_a_bad_cap_on_its_field(world, client, value):
    client.force_login(world.user("technical"))
    response = client.post(
        reverse(ADD), {"host": "api.example.com", "calls": "100", "period_s": "60", "max_concurrent": value}
    )
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert list(form.errors) == ["max_concurrent"]
    assert not EndpointLimit.objects.exists()


@pytest.mark.parametrize("role", ["marketer", "viewer"])
def test_marketer_and_viewer_cannot_open_endpoint_limits_or_open_calls_in_the_admin(world, client, role):
    _open(world.acme, "sms.example.com", "worker-a:1", 3)
    client.force_login(world.user(role))
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 403
    assert "worker-a:1" not in response.content.decode()


# --- calls open now -----------------------------------------------------------------


def test_the_admin_lists_the_calls_open_now_with_each_hosts_cap(world, client):
    EndpointLimit.objects.create(organization=world.acme, host="sms.example.com", max_concurrent=5)
    _open(world.acme, "sms.example.com", "worker-a:11", 3, cap=5)
    _open(world.acme, "sms.example.com", "worker-b:22", 4, cap=5)  # gets the 2 left
    _open(world.acme, "mail.example.com", "worker-a:11", 7, cap=400)
    _open(world.globex, "globex.example.com", "worker-g:33", 6)
    client.force_login(world.user("technical"))
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert [(r["host"], r["worker"], r["calls"], r["max_concurrent"]) for r in response.context["calls_open"]] == [
        ("mail.example.com", "worker-a:11", 7, 400),
        ("sms.example.com", "worker-a:11", 3, 5),
        ("sms.example.com", "worker-b:22", 2, 5),
    ]
    text = response.content.decode()
    assert "Calls open now" in text and "<td>worker-b:22</td><td>2</td><td>5</td>" in text
    assert "globex.example.com" not in text and "worker-g:33" not in text


def test_the_admin_says_when_no_call_is_open(world, client):
    client.force_login(world.user("admin"))
    text = client.get(reverse(CHANGELIST)).content.decode()
    assert "Calls open now" in text and "No calls are open now." in text


def test_the_open_calls_section_takes_the_admins_colours(world, client):
    """Readable in dark mode too: no colour of its own, only the admin's classes and CSS variables."""
    client.force_login(world.user("admin"))
    section = client.get(reverse(CHANGELIST)).content.decode().split('id="calls-open-now"')[1]
    assert "style=" not in section and not COLOUR.search(section)
    css = Path(finders.find("actions/runtime/runtime.css")).read_text()
    colours = [line for line in css.splitlines() if re.match(r"\s*(color|fill|stroke|background[-a-z]*):", line)]
    assert colours and all("var(--" in line for line in colours) and not COLOUR.search(css)


def test_platform_staff_see_every_organizations_open_calls(world, client):
    _open(world.acme, "sms.example.com", "worker-a:1", 2)
    _open(world.globex, "globex.example.com", "worker-g:2", 3)
    client.force_login(UserFactory(username="staff", is_superuser=True, is_staff=True))
    response = client.get(reverse(CHANGELIST))
    rows = [(r["organization"].slug, r["host"], r["calls"]) for r in response.context["calls_open"]]
    assert rows == [("acme", "sms.example.com", 2), ("globex", "globex.example.com", 3)]
    assert "Globex Corporation" in response.content.decode()


def test_calls_in_flight_are_the_organizations_only(world):
    _open(world.acme, "sms.example.com", "w1", 2)
    _open(world.globex, "sms.example.com", "w1", 5)
    assert calls_in_flight(organization=world.acme) == [
        {"host": "sms.example.com", "worker": "w1", "calls": 2, "max_concurrent": 400}
    ]
    assert calls_in_flight(organization=world.globex)[0]["calls"] == 5


# --- the metrics API ----------------------------------------------------------------


@pytest.fixture
def sms(world):
    return make_action(world.acme)


def _metrics(client, action, org: str = "acme"):
    return client.get(f"/api/v1/orgs/{org}/actions/{action.pk}/metrics/?window=1h")


@pytest.mark.parametrize("role", ["admin", "technical"])
def test_metrics_show_the_calls_open_now_per_host_and_worker(world, sms, role):
    EndpointLimit.objects.create(organization=world.acme, host="sms.example.com", max_concurrent=9)
    _open(world.acme, "sms.example.com", "worker-a:1", 3)
    _open(world.acme, "sms.example.com", "worker-b:2", 4)
    _open(world.acme, "mail.example.com", "worker-a:1", 1)
    _open(world.globex, "sms.example.com", "worker-a:1", 50)
    response = _metrics(token_client(world.user(role)), sms)
    assert response.status_code == 200, response.content
    assert response.json()["in_flight"] == {
        "calls": 8,
        "hosts": [
            {
                "host": "mail.example.com", "calls": 1, "max_concurrent": 400,
                "workers": [{"worker": "worker-a:1", "calls": 1}],
            },
            {
                "host": "sms.example.com", "calls": 7, "max_concurrent": 9,
                "workers": [{"worker": "worker-a:1", "calls": 3}, {"worker": "worker-b:2", "calls": 4}],
            },
        ],
        "workers": [{"worker": "worker-a:1", "calls": 4}, {"worker": "worker-b:2", "calls": 4}],
        "max_in_flight": 1,  # tests send calls one at a time (tests/conftest.py)
    }  # fmt: skip


def test_metrics_without_open_calls_show_an_empty_in_flight(world, sms):
    in_flight = _metrics(token_client(world.user("technical")), sms).json()["in_flight"]
    assert in_flight == {"calls": 0, "hosts": [], "workers": [], "max_in_flight": 1}


@pytest.mark.parametrize("role", ["marketer", "viewer"])
def test_marketer_and_viewer_see_metrics_but_no_open_calls(world, sms, role):
    _open(world.acme, "sms.example.com", "worker-a:1", 3)
    response = _metrics(token_client(world.user(role)), sms)
    assert response.status_code == 200  # metrics stay open to every role
    assert response.json()["in_flight"] is None
    assert "worker-a:1" not in response.content.decode()


def test_an_api_key_sees_metrics_but_no_open_calls(world, sms):
    _open(world.acme, "sms.example.com", "worker-a:1", 3)
    _, raw = api_key_create(organization=world.acme, name="reader", scopes=["read"])
    response = _metrics(key_client(raw), sms)
    assert response.status_code == 200
    assert response.json()["in_flight"] is None


def test_another_organization_gets_404_for_the_metrics_and_their_open_calls(world, sms):
    _open(world.acme, "sms.example.com", "worker-a:1", 3)
    response = _metrics(token_client(world.globex_admin.user), sms)
    assert response.status_code == 404
    foreign = _metrics(token_client(world.globex_admin.user), sms, org="globex")
    assert foreign.status_code == 404 and "worker-a:1" not in foreign.content.decode()


# --- the cap itself, on each store --------------------------------------------------


@pytest.fixture(params=["database", "redis"])
def store(request, settings):
    if request.param == "redis":
        settings.REDIS_URL = request.getfixturevalue("redis_url")
    else:
        request.getfixturevalue("db")
        settings.REDIS_URL = ""
    return request.param


def test_the_cap_holds_across_workers_and_frees_what_ends_or_expires(store):
    organization_id = 900_000 + uuid.uuid4().int % 1000  # no row needed; a key of its own on a shared Redis
    name = concurrency.key(organization_id, "api.example.com")
    assert concurrency.change(name, "w1", take=3, cap=5, ttl_s=60) == 3
    assert concurrency.change(name, "w2", take=4, cap=5, ttl_s=60) == 2  # only 2 left of 5
    assert concurrency.change(name, "w2", take=1, cap=5, ttl_s=60) == 0
    assert [(o.worker, o.calls) for o in concurrency.open_calls(organization_id)] == [("w1", 3), ("w2", 2)]

    assert concurrency.change(name, "w1", give_back=2, ttl_s=60) == 0  # two calls of w1 ended
    assert concurrency.change(name, "w2", take=4, cap=5, ttl_s=60) == 2
    assert [(o.worker, o.calls) for o in concurrency.open_calls(organization_id)] == [("w1", 1), ("w2", 4)]

    assert concurrency.change(name, "w2", give_back=1, take=1, cap=5, ttl_s=60) == 1  # one ends, one starts
    assert concurrency.change(name, "w2", give_back=10, ttl_s=60) == 0  # more than it held: down to none
    assert [(o.worker, o.calls) for o in concurrency.open_calls(organization_id)] == [("w1", 1)]

    # A worker killed mid-call: its count is not renewed and stops counting when it expires.
    assert concurrency.change(name, "w3", take=4, cap=5, ttl_s=0.05) == 4
    assert concurrency.change(name, "w2", take=1, cap=5, ttl_s=60) == 0
    time.sleep(0.15)
    assert [(o.worker, o.calls) for o in concurrency.open_calls(organization_id)] == [("w1", 1)]
    assert concurrency.change(name, "w2", take=9, cap=5, ttl_s=60) == 4
    if store == "database":
        assert set(InFlightCounter.objects.get(key=name).workers) == {"w1", "w2"}  # the expired entry is gone
