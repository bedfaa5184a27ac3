"""The invocation log: metrics, filters, bodies by role, replay, host limits, in the API and the admin."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

import actions.admin.invocations  # noqa: F401  (registers the admin classes; actions/admin/actions.py imports it too)
from actions.models import Action, CircuitBreaker, EndpointLimit, Invocation, InvocationAttempt
from actions.services.metrics import action_metrics, parse_window
from actions.services.replays import invocations_replay
from tenants.services import api_key_create
from tests.actions.helpers import make_action
from tests.conftest import key_client, token_client

Status = Invocation.Status
FINAL = (Status.SUCCEEDED, Status.FAILED, Status.RATE_LIMITED)
CHANGELIST = "admin:actions_invocation_changelist"


def _url(org: str, rest: str) -> str:
    return f"/api/v1/orgs/{org}/{rest}"


SENT_REQUEST = {"method": "POST", "url": "https://sms.example.com/v1/x", "headers": [], "body": "{}"}


def _invocation(action: Action, status: str, outcome: str = "", latency=None, *, at: datetime, **fields):
    fields.setdefault("request", SENT_REQUEST)
    return Invocation.objects.create(
        organization=action.organization, action=action, status=status, outcome=outcome, latency_ms=latency,
        created_at=at, finished_at=at if status in FINAL else None, **fields,
    )  # fmt: skip


# A known sequence inside the last hour, and one call before it.
SEQUENCE = [
    *[(Status.SUCCEEDED, "succeeded", ms) for ms in (100, 200, 300, 400, 500, 600)],
    (Status.FAILED, "http_404", 50),
    (Status.FAILED, "http_422", 60),
    (Status.FAILED, "http_503", 900),
    (Status.FAILED, "timedout", 10_000),
    (Status.FAILED, "error", None),
    (Status.FAILED, "refused", None),
    (Status.FAILED, "circuit_open", None),
    (Status.RATE_LIMITED, "rate_limited", None),
    (Status.PENDING, "", None),
    (Status.RUNNING, "", None),
]
# Finished latencies sorted: 50 60 100 200 300 400 500 600 900 10000 -> nearest rank 5 and 10.
EXPECTED = {
    "calls": 14,
    "succeeded": 6,
    "http_4xx": 2,
    "http_5xx": 1,
    "timeouts": 1,
    "rate_limited": 1,
    "errors": 3,
    "latency_p50_ms": 300,
    "latency_p95_ms": 10_000,
    "pending": 1,
    "running": 1,
}


def _sequence(action: Action, now: datetime) -> None:
    for i, (status, outcome, latency) in enumerate(SEQUENCE):
        _invocation(action, status, outcome, latency, at=now - timedelta(minutes=50 - 3 * i))
    _invocation(action, Status.SUCCEEDED, "succeeded", 99_999, at=now - timedelta(hours=2))


@pytest.fixture
def sms(world) -> Action:
    return make_action(world.acme)


@pytest.fixture
def globex_action(world) -> Action:
    return make_action(world.globex, name="Globex ping")


# --- metrics ------------------------------------------------------------------------


def test_metrics_of_a_known_sequence_are_exact(world, sms, globex_action, django_assert_max_num_queries):
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    _sequence(sms, now)
    other = make_action(world.acme, name="Other")
    _invocation(other, Status.FAILED, "http_500", 5, at=now - timedelta(minutes=5))
    _invocation(globex_action, Status.FAILED, "http_500", 5, at=now - timedelta(minutes=5))

    with django_assert_max_num_queries(3):  # the counts in one aggregate, then p50 and p95
        metrics = action_metrics(action=sms, window=timedelta(hours=1), now=now)

    assert {key: metrics[key] for key in EXPECTED} == EXPECTED
    assert metrics["success_rate"] == pytest.approx(6 / 14)
    assert metrics["calls_per_second"] == pytest.approx(14 / 3600)
    assert len(metrics["series"]) == 60 and metrics["bucket_s"] == 60
    assert metrics["series"][0]["start"] == now - timedelta(hours=1)
    assert sum(b["calls"] for b in metrics["series"]) == 14
    assert sum(b["failures"] for b in metrics["series"]) == 8
    # The first call, 50 minutes ago, falls in the 11th one-minute bucket.
    assert metrics["series"][10]["calls"] == 1


def test_a_wider_window_takes_the_older_call_in(world, sms):
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    _sequence(sms, now)
    metrics = action_metrics(action=sms, window=timedelta(hours=3), now=now)
    assert metrics["calls"] == 15 and metrics["succeeded"] == 7
    assert metrics["latency_p95_ms"] == 99_999
    assert metrics["calls_per_second"] == pytest.approx(15 / (3 * 3600))


def test_metrics_without_calls_have_no_rate_and_no_latency(world, sms):
    metrics = action_metrics(action=sms, window=timedelta(days=7))
    assert metrics["calls"] == 0 and metrics["success_rate"] is None
    assert metrics["latency_p50_ms"] is None and metrics["latency_p95_ms"] is None
    assert 12 <= len(metrics["series"]) <= 60


@pytest.mark.parametrize(
    "text, expected",
    [("1m", timedelta(minutes=1)), ("90m", timedelta(minutes=90)), ("24h", timedelta(hours=24)),
     ("30d", timedelta(days=30))],
)  # fmt: skip
def test_parse_window_accepts_minutes_hours_and_days(text, expected):
    assert parse_window(text) == expected


@pytest.mark.parametrize("text", ["", "1", "1w", "0h", "31d", "h1", "-1h", "1.5h", "721h"])
def test_parse_window_refuses_anything_else_naming_window(text):
    with pytest.raises(ValidationError) as raised:
        parse_window(text)
    assert "window" in raised.value.message_dict


@pytest.mark.parametrize("role", ["admin", "technical", "marketer", "viewer"])
def test_metrics_through_the_api_match_the_service(world, sms, role):
    _sequence(sms, timezone.now())
    response = token_client(world.user(role)).get(_url("acme", f"actions/{sms.pk}/metrics/?window=1h"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert {key: body[key] for key in EXPECTED} == EXPECTED
    assert body["success_rate"] == pytest.approx(6 / 14)
    assert body["calls_per_second"] == pytest.approx(14 / 3600)
    assert body["action"] == sms.pk and body["window"] == "1h"
    assert sum(b["calls"] for b in body["series"]) == 14


@pytest.mark.parametrize("window", ["2y", "31d", "abc", "0m"])
def test_bad_window_is_400_naming_window(world, sms, window):
    response = token_client(world.user("viewer")).get(_url("acme", f"actions/{sms.pk}/metrics/?window={window}"))
    assert response.status_code == 400
    assert "window" in response.json()["errors"]


def test_metrics_of_another_organizations_action_is_404(world, globex_action):
    response = token_client(world.user("admin")).get(_url("acme", f"actions/{globex_action.pk}/metrics/"))
    assert response.status_code == 404


# --- the invocation list ------------------------------------------------------------


@pytest.fixture
def log(world, sms, globex_action):
    now = timezone.now()
    other = make_action(world.acme, name="Other")
    rows = {
        "old_failed": _invocation(sms, Status.FAILED, "http_404", 10, at=now - timedelta(days=2)),
        "failed": _invocation(sms, Status.FAILED, "http_503", 20, at=now - timedelta(hours=1)),
        "succeeded": _invocation(sms, Status.SUCCEEDED, "succeeded", 30, at=now - timedelta(minutes=30)),
        "other": _invocation(other, Status.FAILED, "http_404", 40, at=now - timedelta(minutes=10)),
        "globex": _invocation(globex_action, Status.FAILED, "http_404", 50, at=now - timedelta(minutes=5)),
    }
    return {**rows, "now": now, "other_action": other}


def _ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_invocation_list_shows_the_organizations_invocations_newest_first(world, log):
    response = token_client(world.user("viewer")).get(_url("acme", "invocations/"))
    ids = [row["id"] for row in response.json()["results"]]
    expected = [log[k] for k in ("other", "succeeded", "failed", "old_failed")]
    assert ids == [str(i.pk) for i in expected]


def test_invocation_list_filters(world, sms, log):
    client = token_client(world.user("viewer"))
    since = (log["now"] - timedelta(hours=3)).isoformat()
    until = (log["now"] - timedelta(minutes=20)).isoformat()
    assert _ids(client.get(_url("acme", "invocations/"), {"action": sms.pk})) == {
        str(log[k].pk) for k in ("old_failed", "failed", "succeeded")
    }
    assert _ids(client.get(_url("acme", "invocations/"), {"status": "succeeded"})) == {str(log["succeeded"].pk)}
    assert _ids(client.get(_url("acme", "invocations/"), {"outcome": "http_404"})) == {
        str(log["old_failed"].pk),
        str(log["other"].pk),
    }
    assert _ids(client.get(_url("acme", "invocations/"), {"since": since, "until": until})) == {
        str(log["failed"].pk),
        str(log["succeeded"].pk),
    }
    filtered = client.get(_url("acme", "invocations/"), {"action": sms.pk, "status": "failed", "since": since})
    assert _ids(filtered) == {str(log["failed"].pk)}
    assert _ids(client.get(_url("acme", "invocations/"), {"action": log["globex"].action_id})) == set()


@pytest.mark.parametrize(
    "params, field",
    [({"since": "yesterday"}, "since"), ({"until": "2025-13-45"}, "until"), ({"status": "lost"}, "status"),
     ({"action": "sms"}, "action")],
)  # fmt: skip
def test_bad_invocation_filter_is_400_naming_it(world, log, params, field):
    response = token_client(world.user("viewer")).get(_url("acme", "invocations/"), params)
    assert response.status_code == 400
    assert field in response.json()["errors"]


# --- bodies only for who may see them -----------------------------------------------

MARKERS = ["REQUEST-BODY-MARKER", "X-Request-Marker", "RESPONSE-BODY-MARKER", "ATTEMPT-BODY-MARKER"]
BODY_FIELDS = {"request", "response_headers", "response_body", "attempt_log"}


@pytest.fixture
def answered(sms) -> Invocation:
    invocation = _invocation(
        sms, Status.FAILED, "http_500", 42, at=timezone.now(), response_status=500,
        request={"method": "POST", "url": "https://sms.example.com/v1/accounts/a/messages",
                 "headers": [["X-Request-Marker", "1"]], "body": '{"text": "REQUEST-BODY-MARKER"}'},
        response_headers={"Content-Type": "application/json"}, response_body='{"e": "RESPONSE-BODY-MARKER"}',
        attempts=1,
    )  # fmt: skip
    InvocationAttempt.objects.create(
        invocation=invocation, number=1, outcome="http_500", response_status=500,
        response_body="ATTEMPT-BODY-MARKER", latency_ms=42, started_at=timezone.now(),
    )  # fmt: skip
    return invocation


@pytest.mark.parametrize("role", ["marketer", "viewer"])
def test_marketer_and_viewer_see_statuses_but_no_bodies_in_the_api(world, answered, role):
    client = token_client(world.user(role))
    detail = client.get(_url("acme", f"invocations/{answered.pk}/"))
    assert detail.status_code == 200
    assert detail.json()["status"] == "failed" and detail.json()["response_status"] == 500
    assert not BODY_FIELDS & set(detail.json())
    listed = client.get(_url("acme", "invocations/")).content.decode()
    for text in (detail.content.decode(), listed):
        for marker in MARKERS:
            assert marker not in text


def test_an_api_key_sees_no_bodies(world, answered):
    _, raw = api_key_create(organization=world.acme, name="reader", scopes=["read"])
    detail = key_client(raw).get(_url("acme", f"invocations/{answered.pk}/"))
    assert detail.status_code == 200 and not BODY_FIELDS & set(detail.json())


@pytest.mark.parametrize("role", ["admin", "technical"])
def test_technical_user_sees_request_response_and_attempts(world, answered, role):
    detail = token_client(world.user(role)).get(_url("acme", f"invocations/{answered.pk}/")).json()
    assert detail["request"]["body"] == '{"text": "REQUEST-BODY-MARKER"}'
    assert detail["response_body"] == '{"e": "RESPONSE-BODY-MARKER"}'
    assert detail["response_headers"] == {"Content-Type": "application/json"}
    assert [a["number"] for a in detail["attempt_log"]] == [1]
    assert detail["attempt_log"][0]["response_body"] == "ATTEMPT-BODY-MARKER"
    assert detail["action_name"] == "Send SMS"


@pytest.mark.parametrize("role", ["marketer", "viewer"])
def test_marketer_and_viewer_see_no_bodies_in_the_admin(world, answered, client, role):
    client.force_login(world.user(role))
    page = client.get(reverse("admin:actions_invocation_change", args=[answered.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "http_500" in text
    for marker in MARKERS:
        assert marker not in text


def test_technical_user_sees_bodies_in_the_admin(world, answered, client):
    client.force_login(world.user("technical"))
    text = client.get(reverse("admin:actions_invocation_change", args=[answered.pk])).content.decode()
    for marker in MARKERS:
        assert marker in text


# --- replay -------------------------------------------------------------------------


def _replay(world, body, role="technical", org="acme"):
    return token_client(world.user(role)).post(_url(org, "invocations/replay/"), body, format="json")


def test_replaying_one_failed_invocation_links_a_new_pending_one_with_the_same_key(world, answered):
    response = _replay(world, {"invocation": str(answered.pk)})
    assert response.status_code == 202, response.content
    [answer] = response.json()
    replay = Invocation.objects.get(pk=answer["id"])
    assert answer["replay_of"] == str(answered.pk)
    assert replay.replay_of_id == answered.pk and replay.status == Status.PENDING
    assert replay.idempotency_key == answered.idempotency_key
    assert replay.request == answered.request and replay.origin == Invocation.Origin.REPLAY
    assert replay.organization_id == world.acme.pk and replay.action_id == answered.action_id


def test_replaying_a_succeeded_invocation_is_409(world, sms):
    succeeded = _invocation(sms, Status.SUCCEEDED, "succeeded", 5, at=timezone.now())
    response = _replay(world, {"invocation": str(succeeded.pk)})
    assert response.status_code == 409
    assert not succeeded.replays.exists()


def test_replaying_another_organizations_invocation_is_404(world, globex_action):
    foreign = _invocation(globex_action, Status.FAILED, "http_500", 5, at=timezone.now())
    assert _replay(world, {"invocation": str(foreign.pk)}).status_code == 404
    assert _replay(world, {"action": globex_action.pk, "since": "2020-01-01T00:00:00Z",
                           "until": "2030-01-01T00:00:00Z"}).status_code == 404  # fmt: skip
    assert not foreign.replays.exists()


def test_replaying_a_range_replays_only_the_actions_failed_ones_in_it(world, sms):
    now = timezone.now()
    other = make_action(world.acme, name="Other")
    inside = [
        _invocation(sms, Status.FAILED, "http_503", 5, at=now - timedelta(minutes=30)),
        _invocation(sms, Status.FAILED, "timedout", 5, at=now - timedelta(minutes=20)),
    ]
    replayed_before = _invocation(sms, Status.FAILED, "error", None, at=now - timedelta(minutes=25))
    Invocation.objects.create(
        organization=world.acme,
        action=sms,
        replay_of=replayed_before,
        status=Status.SUCCEEDED,
        created_at=now,
    )
    _invocation(sms, Status.SUCCEEDED, "succeeded", 5, at=now - timedelta(minutes=15))
    _invocation(sms, Status.RATE_LIMITED, "rate_limited", None, at=now - timedelta(minutes=15))
    _invocation(sms, Status.FAILED, "http_503", 5, at=now - timedelta(hours=3))
    _invocation(other, Status.FAILED, "http_503", 5, at=now - timedelta(minutes=30))
    body = {
        "action": sms.pk,
        "since": (now - timedelta(hours=1)).isoformat(),
        "until": (now - timedelta(minutes=10)).isoformat(),
    }

    response = _replay(world, body)

    assert response.status_code == 202, response.content
    assert sorted(r["replay_of"] for r in response.json()) == sorted(str(i.pk) for i in inside)
    assert _replay(world, body).json() == []  # replayed once only


def test_replay_range_service_respects_the_half_open_range(world, sms):
    start = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    at_start = _invocation(sms, Status.FAILED, "error", None, at=start)
    _invocation(sms, Status.FAILED, "error", None, at=start + timedelta(hours=1))
    replays = invocations_replay(action=sms, since=start, until=start + timedelta(hours=1))
    assert [r.replay_of_id for r in replays] == [at_start.pk]


@pytest.mark.parametrize(
    "body, field",
    [({}, "invocation"), ({"invocation": "nope"}, "invocation"), ({"action": 1}, "since"),
     ({"action": 1, "since": "2025-01-01T00:00:00Z"}, "until"),
     ({"action": 1, "since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "until"),
     ({"action": 1, "since": "soon", "until": "2025-01-01T00:00:00Z"}, "since"),
     ({"invocation": "3f1f6a2e-1b2c-4c1d-9e8f-0a1b2c3d4e5f", "colour": "red"}, "colour")],
)  # fmt: skip
def test_bad_replay_input_is_400_naming_the_field(world, body, field):
    response = _replay(world, body)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]


def test_marketer_cannot_replay(world, answered):
    response = _replay(world, {"invocation": str(answered.pk)}, role="marketer")
    assert response.status_code == 403
    assert not answered.replays.exists()


# --- endpoint limits ----------------------------------------------------------------

LIMITS = "endpoint-limits/"


def test_technical_user_manages_endpoint_limits(world):
    client = token_client(world.user("technical"))
    created = client.post(
        _url("acme", LIMITS), {"host": " API.Twilio.com ", "calls": 100, "period_s": 60}, format="json"
    )
    assert created.status_code == 201, created.content
    limit = created.json()
    assert limit == {"id": limit["id"], "host": "api.twilio.com", "calls": 100, "period_s": 60, "max_concurrent": 400}
    assert EndpointLimit.objects.get(pk=limit["id"]).organization_id == world.acme.pk

    detail = _url("acme", f"{LIMITS}{limit['id']}/")
    assert client.get(detail).json()["host"] == "api.twilio.com"
    assert [row["host"] for row in client.get(_url("acme", LIMITS)).json()["results"]] == ["api.twilio.com"]
    assert client.patch(detail, {"calls": 5}, format="json").json()["calls"] == 5
    replaced = client.put(detail, {"host": "api.twilio.com", "calls": 7, "period_s": 1}, format="json")
    assert replaced.json() == {
        "id": limit["id"], "host": "api.twilio.com", "calls": 7, "period_s": 1, "max_concurrent": 400,
    }  # fmt: skip
    assert client.delete(detail).status_code == 204
    assert not EndpointLimit.objects.exists()


@pytest.mark.parametrize(
    "change, field",
    [({"host": "https://api.example.com"}, "host"), ({"host": "api.example.com:443"}, "host"),
     ({"host": "api.example.com/v1"}, "host"), ({"host": "bad host"}, "host"), ({"host": ""}, "host"),
     ({"host": "-bad.example.com"}, "host"), ({"calls": 0}, "calls"), ({"calls": "many"}, "calls"),
     ({"period_s": 0}, "period_s"), ({"period_s": 86_401}, "period_s"), ({"colour": "red"}, "colour")],
)  # fmt: skip
def test_bad_endpoint_limit_is_400_naming_the_field(world, change, field):
    body = {"host": "api.example.com", "calls": 10, "period_s": 60, **change}
    response = token_client(world.user("technical")).post(_url("acme", LIMITS), body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not EndpointLimit.objects.exists()


def test_one_limit_per_host_per_organization(world):
    EndpointLimit.objects.create(organization=world.globex, host="api.example.com", calls=1, period_s=1)
    client = token_client(world.user("technical"))
    body = {"host": "api.example.com", "calls": 10, "period_s": 60}
    assert client.post(_url("acme", LIMITS), body, format="json").status_code == 201
    again = client.post(_url("acme", LIMITS), {**body, "host": "API.example.com"}, format="json")
    assert again.status_code == 400 and "host" in again.json()["errors"]
    other = client.post(_url("acme", LIMITS), {**body, "host": "sms.example.com"}, format="json").json()
    renamed = client.patch(_url("acme", f"{LIMITS}{other['id']}/"), {"host": "api.example.com"}, format="json")
    assert renamed.status_code == 400 and "host" in renamed.json()["errors"]


def test_another_organizations_limit_is_not_listed(world):
    EndpointLimit.objects.create(organization=world.globex, host="globex.example.com", calls=1, period_s=1)
    listed = token_client(world.user("technical")).get(_url("acme", LIMITS)).json()
    assert listed["results"] == []


# --- admin --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["marketer", "viewer"])
def test_marketer_sees_only_acme_invocations_in_the_admin(world, log, client, role):
    client.force_login(world.user(role))
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    text = response.content.decode()
    assert str(log["failed"].pk)[:8] in text and "Send SMS" in text
    assert str(log["globex"].pk)[:8] not in text
    assert "Globex" not in text and "globex" not in text
    assert "Replay selected failed invocations" not in text
    assert "Add invocation" not in text


def test_action_filter_lists_the_organizations_actions_and_links_to_metrics(world, sms, log, client):
    client.force_login(world.user("marketer"))
    response = client.get(reverse(CHANGELIST), {"action__id__exact": sms.pk})
    assert response.status_code == 200
    rows = {str(i.pk)[:8] for i in response.context["cl"].result_list}
    assert rows == {str(log[k].pk)[:8] for k in ("old_failed", "failed", "succeeded")}
    text = response.content.decode()
    assert reverse("admin:actions_invocation_metrics", args=[sms.pk]) in text
    assert "Other" in text  # the other acme action is a filter choice


def test_admin_metrics_page_draws_an_svg_chart(world, sms, client):
    _sequence(sms, timezone.now())
    client.force_login(world.user("marketer"))
    url = reverse("admin:actions_invocation_metrics", args=[sms.pk])
    for window, calls, rate in (("1h", 14, "42.9 %"), ("24h", 15, "46.7 %"), ("7d", 15, "46.7 %")):
        response = client.get(url, {"window": window})
        assert response.status_code == 200
        text = response.content.decode()
        assert '<svg class="conduit-chart"' in text and '<rect class="conduit-chart-failures"' in text
        assert rate in text  # successes of calls
        assert response.context["metrics"]["calls"] == calls
    bad = client.get(url, {"window": "forever"})
    assert bad.status_code == 200 and "is not a window" in bad.content.decode()
    assert "Replay failed invocations" not in bad.content.decode()


def test_admin_metrics_of_another_organizations_action_is_404(world, globex_action, client):
    client.force_login(world.user("admin"))
    response = client.get(reverse("admin:actions_invocation_metrics", args=[globex_action.pk]))
    assert response.status_code == 404


def test_technical_user_replays_selected_failed_invocations_in_the_admin(world, log, client):
    client.force_login(world.user("technical"))
    selected = [log["failed"].pk, log["succeeded"].pk]
    response = client.post(reverse(CHANGELIST), {"action": "replay_failed", "_selected_action": selected}, follow=True)
    assert response.status_code == 200
    assert [i.replay_of_id for i in Invocation.objects.filter(origin="replay")] == [log["failed"].pk]
    text = response.content.decode()
    assert "1 failed invocation(s) replayed" in text and "1 invocation(s) skipped" in text


def test_technical_user_replays_a_range_from_the_metrics_page(world, sms, log, client):
    client.force_login(world.user("technical"))
    since = timezone.localtime(log["now"] - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
    until = timezone.localtime(log["now"] + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    url = reverse("admin:actions_invocation_replay_range", args=[sms.pk])
    response = client.post(url, {"since": since, "until": until, "window": "24h"})
    assert response.status_code == 302
    assert [i.replay_of_id for i in Invocation.objects.filter(origin="replay")] == [log["failed"].pk]


def test_marketer_cannot_replay_a_range_in_the_admin(world, sms, log, client):
    client.force_login(world.user("marketer"))
    url = reverse("admin:actions_invocation_replay_range", args=[sms.pk])
    response = client.post(url, {"since": "2020-01-01T00:00", "until": "2030-01-01T00:00"})
    assert response.status_code == 403
    assert not Invocation.objects.filter(origin="replay").exists()


def test_endpoint_limit_admin_uses_the_same_validation(world, client):
    client.force_login(world.user("technical"))
    add = reverse("admin:actions_endpointlimit_add")
    bad = client.post(
        add, {"host": "https://api.example.com/x", "calls": "10", "period_s": "60", "max_concurrent": "400"}
    )
    assert bad.status_code == 200 and "bare host name" in bad.content.decode()
    good = client.post(add, {"host": "API.example.com", "calls": "10", "period_s": "60", "max_concurrent": "400"})
    assert good.status_code == 302
    limit = EndpointLimit.objects.get()
    assert (limit.organization_id, limit.host) == (world.acme.pk, "api.example.com")
    duplicate = client.post(add, {"host": "api.example.com", "calls": "1", "period_s": "1", "max_concurrent": "400"})
    assert duplicate.status_code == 200 and "already has a limit" in duplicate.content.decode()
    too_long = client.post(
        add, {"host": "other.example.com", "calls": "1", "period_s": "86401", "max_concurrent": "400"}
    )
    assert too_long.status_code == 200 and EndpointLimit.objects.count() == 1


def test_marketer_cannot_open_endpoint_limits_in_the_admin(world, client):
    client.force_login(world.user("marketer"))
    assert client.get(reverse("admin:actions_endpointlimit_changelist")).status_code == 403


def test_circuits_are_listed_read_only_for_those_who_see_destinations(world, client):
    CircuitBreaker.objects.create(organization=world.acme, host="sms.example.com", state="open")
    CircuitBreaker.objects.create(organization=world.globex, host="globex.example.com", state="open")
    client.force_login(world.user("technical"))
    response = client.get(reverse("admin:actions_circuitbreaker_changelist"))
    assert response.status_code == 200
    text = response.content.decode()
    assert "sms.example.com" in text and "globex.example.com" not in text
    assert client.get(reverse("admin:actions_circuitbreaker_add")).status_code == 403
    for role in ("marketer", "viewer"):  # a circuit is kept per host: where calls go
        client.force_login(world.user(role))
        assert client.get(reverse("admin:actions_circuitbreaker_changelist")).status_code == 403


def test_superuser_sees_every_organizations_invocations_and_metrics(world, log, globex_action, client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="staff", is_superuser=True, is_staff=True))
    response = client.get(reverse(CHANGELIST))
    rows = {i.pk for i in response.context["cl"].result_list}
    assert {log["globex"].pk, log["failed"].pk} <= rows
    assert "Globex ping (globex)" in response.content.decode()  # the action filter names the organization
    page = client.get(reverse("admin:actions_invocation_metrics", args=[globex_action.pk]))
    assert page.status_code == 200 and page.context["metrics"]["calls"] == 1
    detail = client.get(reverse("admin:actions_invocation_change", args=[log["globex"].pk]))
    assert detail.status_code == 200 and "Globex Corporation" in detail.content.decode()


def test_invocations_are_found_by_id_in_the_admin(world, log, client):
    client.force_login(world.user("viewer"))
    found = client.get(reverse(CHANGELIST), {"q": str(log["failed"].pk)})
    assert [i.pk for i in found.context["cl"].result_list] == [log["failed"].pk]
    assert client.get(reverse(CHANGELIST), {"q": "not an id"}).status_code == 200
    assert client.get(reverse(CHANGELIST), {"q": str(log["globex"].pk)}).context["cl"].result_list.count() == 0
