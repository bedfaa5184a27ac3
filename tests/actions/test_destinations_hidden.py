"""Issue 16 (14): where calls go (host, IP, port) is action configuration. Viewers, marketers and
`read` API keys read a failed call's outcome in words, in the API and the admin; admins and technical
users read the full error."""

import json
import socket

import pytest
from django.urls import reverse
from django.utils.html import escape

from actions.models import Invocation
from actions.selectors import error_shown, outcome_sentence
from journeys.models import StepRun
from tenants.services import api_key_create
from tests.actions.helpers import make_action
from tests.conftest import key_client, token_client
from tests.journeys.helpers import PARAMETERS, drain, live_journey, send

ORG = "/api/v1/orgs/acme"
LESSER = ["marketer", "viewer"]
SEES = ["admin", "technical"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(
    params=[
        ("refused", "127.0.0.1", False),  # a loopback address, not allowed
        ("refused", "[::1]", False),  # the IPv6 loopback
        ("refused", "localhost", False),  # a host name that resolves to loopback
        ("error", "127.0.0.1", True),  # allowed, but nothing listens: "connection refused"
    ],
    ids=["loopback", "ipv6", "host-name", "closed-port"],
)
def failed_call(request, world, settings):
    """A live journey's call that failed at its destination, and the strings that name it."""
    outcome, host, allowed = request.param
    settings.CONDUIT_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8", "::1/128"]
    world.acme.allow_http = True
    world.acme.save()
    port = closed_port()
    action = make_action(
        world.acme, url=f"http://{host}:{port}/v1/accounts/{{{{account}}}}/messages", auth={"type": "none"}
    )
    action.max_retries = 0
    action.save()
    steps = [
        {"key": "sms", "type": "action", "action": action.pk, "parameters": PARAMETERS, "next": "sent"},
        {"key": "sent", "type": "end"},
    ]
    live_journey(world, steps, "sms")
    if not allowed:
        settings.CONDUIT_ALLOWED_PRIVATE_NETWORKS = []
    send(world)
    drain()
    invocation = Invocation.objects.get()
    assert invocation.outcome == outcome, invocation.error
    named = {"127.0.0.1", "::1", "localhost", f":{port}", str(port)}  # a name resolves to 127.0.0.1
    assert any(name in invocation.error for name in named), invocation.error
    return invocation, named


def errors_in(body) -> list[str]:
    """Every `error` value in an API answer, however deep."""
    found = []
    if isinstance(body, dict):
        for key, value in body.items():
            if key == "error" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(errors_in(value))
    elif isinstance(body, list):
        for value in body:
            found.extend(errors_in(value))
    return found


def api_errors(client, invocation) -> list[str]:
    answers = [
        client.get(f"{ORG}/invocations/"),
        client.get(f"{ORG}/invocations/{invocation.pk}/"),
        client.get(f"{ORG}/runs/"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    errors = [e for a in answers for e in errors_in(a.json())]
    assert len(errors) >= 4  # the invocation twice, the run and its failed step
    return errors


def assert_hidden(errors: list[str], named: set[str]) -> None:
    for error in errors:
        for name in named:
            assert name not in error, error


@pytest.mark.parametrize("role", LESSER)
def test_lesser_roles_read_the_outcome_not_the_destination_in_the_api(world, failed_call, role):
    invocation, named = failed_call
    errors = api_errors(token_client(world.user(role)), invocation)
    assert_hidden(errors, named)
    assert outcome_sentence(invocation.outcome) in errors


def test_a_read_key_reads_the_outcome_not_the_destination(world, failed_call):
    invocation, named = failed_call
    _, raw = api_key_create(organization=world.acme, name="dashboards", scopes=["read"])
    errors = api_errors(key_client(raw), invocation)
    assert_hidden(errors, named)
    assert outcome_sentence(invocation.outcome) in errors


@pytest.mark.parametrize("role", SEES)
def test_admins_and_technical_users_read_the_full_error(world, failed_call, role):
    invocation, _ = failed_call
    errors = api_errors(token_client(world.user(role)), invocation)
    assert invocation.error in errors
    step = StepRun.objects.get(step_key="sms")
    assert step.error == invocation.error and step.error in errors


@pytest.mark.parametrize("role", LESSER)
def test_lesser_roles_read_the_outcome_in_the_admin(world, failed_call, client, role):
    invocation, named = failed_call
    client.force_login(world.user(role))
    pages = [
        client.get(reverse("admin:actions_invocation_change", args=[invocation.pk])),
        client.get(reverse("admin:journeys_journeyrun_change", args=[StepRun.objects.get().run_id])),
    ]
    for page in pages:
        assert page.status_code == 200
        text = page.content.decode()
        assert outcome_sentence(invocation.outcome) in text
        assert invocation.error not in text
        assert not [n for n in named if not n.isdigit() and n in text], "a host, an address or :port shows"
    assert client.get(reverse("admin:actions_circuitbreaker_changelist")).status_code == 403


def test_technical_users_read_the_full_error_in_the_admin(world, failed_call, client):
    invocation, _ = failed_call
    client.force_login(world.user("technical"))
    page = client.get(reverse("admin:actions_invocation_change", args=[invocation.pk])).content.decode()
    run = client.get(reverse("admin:journeys_journeyrun_change", args=[StepRun.objects.get().run_id]))
    assert escape(invocation.error) in page and escape(invocation.error) in run.content.decode()


@pytest.mark.parametrize(
    ("outcome", "sentence"),
    [
        ("http_503", "The provider answered 503 (Service Unavailable)."),
        ("http_599", "The provider answered 599."),
        ("smtp_550", "The email server answered 550."),
        ("timedout", "The provider did not answer in time."),
        ("circuit_open", "The call was not made: calls to this provider are paused after repeated failures."),
        ("something_new", "The call failed; technical users see why."),
    ],
)
def test_every_outcome_reads_as_a_sentence_that_names_no_destination(outcome, sentence):
    assert outcome_sentence(outcome) == sentence


def test_a_call_that_failed_on_its_values_keeps_its_reason():
    """A call never attempted that ended `error` failed before any destination: its text says what to fix."""
    reason = "parameter phone: required"
    assert error_shown(reason, "error", sees_destinations=False, attempted=False) == reason
    assert error_shown(reason, "error", sees_destinations=False, attempted=True) == outcome_sentence("error")
    assert json.dumps(error_shown("", "http_500", sees_destinations=False)) == '""'
