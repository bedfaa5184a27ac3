"""Frequency caps in the engine: a profile's calls of a category counted across journeys, once per step's call.

The engine's own functions run in-process here (tests/journeys/helpers.py `drain`); the counting is also
tested on each store with a controllable clock, and through two real Celery workers at once.
"""

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone
from werkzeug import Response

from actions.models import Invocation
from actions.services.metrics import action_metrics
from actions.services.replays import invocation_replay
from journeys.frequency_caps import counting
from journeys.models import CountedCall, FrequencyCap, JourneyRun, Profile
from journeys.reports import journey_report
from journeys.services import journey_create, journey_publish
from tenants.services import api_key_create
from tests.actions.helpers import make_action
from tests.conftest import key_client, token_client
from tests.journeys.helpers import PARAMETERS, drain, path, send
from tests.workers import wait_for

SMS = "marketing-sms"


def _redis_keys() -> list:
    if not settings.REDIS_URL:
        return []
    return list(redis.Redis.from_url(settings.REDIS_URL).scan_iter("conduit:fc:*"))


@pytest.fixture(autouse=True)
def _no_counted_calls_left_in_redis(settings):
    """Ids start again with each test database: calls counted by an earlier session must not count here."""
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter("conduit:fc:*"):
            client.delete(key)


@pytest.fixture
def answers(world, httpserver, allow_loopback):
    """The receiver answers each call with the next status of `answers` (200 once they run out)."""
    world.acme.allow_http = True
    world.acme.save()
    statuses: list[int] = []
    calls: list[dict] = []

    def handle(request):
        calls.append(json.loads(request.data))
        status = statuses.pop(0) if statuses else 200
        return Response(json.dumps({"n": len(calls)}), status=status, content_type="application/json")

    httpserver.expect_request("/v1/accounts/a1/messages").respond_with_handler(handle)
    return statuses, calls


@pytest.fixture
def sms(world, httpserver, answers):
    url = httpserver.url_for("/v1/accounts/{{account}}/messages")
    return make_action(world.acme, url=url, auth={"type": "none"}, max_retries=0, categories=[SMS])


def journey(world, action, name, entry, **sms_step):
    steps = [
        {"key": "sms", "type": "action", "action": action.pk, "parameters": PARAMETERS, "next": "sent",
         "on_error": "sent", **sms_step},
        {"key": "sent", "type": "end"},
        {"key": "capped", "type": "condition",
         "branches": [{"expression": 'steps.sms.status == "capped"', "next": "held"}], "else": "sent"},
        {"key": "held", "type": "end"},
    ]  # fmt: skip
    if "on_capped" not in sms_step:
        steps = steps[:2]
    created = journey_create(
        organization=world.acme,
        data={"name": name, "entry_event": entry, "reentry": "always", "steps": steps, "start": "sms"},
    )
    return journey_publish(journey=created)


def cap(world, max_calls=2, period_days=7, category=SMS):
    return FrequencyCap.objects.create(
        organization=world.acme, category=category, max_calls=max_calls, period_days=period_days
    )


def test_a_cap_of_2_per_7_days_across_two_journeys_sends_the_third_call_to_on_capped(world, sms, answers):
    cap(world)
    first = journey(world, sms, "Cart", "cart_abandoned", on_capped="capped")
    second = journey(world, sms, "Browse", "page_viewed", on_capped="capped")
    send(world, name="cart_abandoned")
    drain()
    send(world, name="page_viewed")
    drain()
    send(world, name="cart_abandoned")
    drain()
    runs = list(JourneyRun.objects.order_by("started_at"))
    assert [r.journey_id for r in runs] == [first.pk, second.pk, first.pk]
    assert [path(r) for r in runs[:2]] == [[("sms", "succeeded", "succeeded"), ("sent", "succeeded", "")]] * 2
    assert path(runs[2]) == [("sms", "capped", "capped"), ("capped", "succeeded", "branches[0]"),
                             ("held", "succeeded", "")]  # fmt: skip
    assert runs[2].status == "completed" and runs[2].context["sms"]["status"] == "capped"
    assert len(answers[1]) == 2 and Invocation.objects.count() == 2  # the capped call was never made
    assert runs[2].step_runs.get(step_key="sms").invocation is None
    # Another profile has calls of its own.
    send(world, profile="cust-2", name="page_viewed")
    drain()
    assert len(answers[1]) == 3


def test_without_on_capped_the_step_is_capped_and_the_run_goes_on_to_next(world, sms, answers):
    cap(world, max_calls=1)
    journey(world, sms, "Cart", "cart_abandoned")
    for _ in range(2):
        send(world)
        drain()
    capped = JourneyRun.objects.order_by("started_at").last()
    assert path(capped) == [("sms", "capped", "capped"), ("sent", "succeeded", "")]
    assert capped.status == "completed" and capped.context["sms"] == {
        "status": "capped", "response": None, "error_response": None,
    }  # fmt: skip
    report = journey_report(journey=capped.journey)
    sms_row = next(row for row in report["steps"] if row["key"] == "sms")
    assert sms_row["entered"] == 2 and sms_row["succeeded"] == 1 and sms_row["capped"] == 1
    assert sms_row["percent"]["capped"] == 50.0
    metrics = token_client(world.user("technical")).get(f"/api/v1/orgs/acme/actions/{sms.pk}/metrics/?window=1h")
    assert metrics.status_code == 200 and metrics.json()["capped"] == 1 and metrics.json()["calls"] == 1
    assert action_metrics(action=sms, window=timedelta(hours=1), now=timezone.now() - timedelta(hours=2))["capped"] == 0


def test_an_action_without_a_capped_category_is_not_counted(world, sms, answers):
    cap(world, max_calls=1, category="marketing-email")
    journey(world, sms, "Cart", "cart_abandoned")
    for _ in range(3):
        send(world)
        drain()
    assert len(answers[1]) == 3 and not CountedCall.objects.exists() and not _redis_keys()


def test_a_retried_call_is_counted_once(world, sms, answers, settings):
    settings.CONDUIT_RETRY_BASE_S = 0.01
    sms.max_retries = 2
    sms.save()
    cap(world)
    journey(world, sms, "Cart", "cart_abandoned", on_capped="capped")
    answers[0].extend([503, 503])  # the first call is answered on its third attempt
    send(world)
    for _ in range(10):
        drain(1)
        time.sleep(0.05)
    first = Invocation.objects.get()
    assert first.status == "succeeded" and first.attempts == 3
    send(world)
    drain()
    send(world)
    drain()
    runs = list(JourneyRun.objects.order_by("started_at"))
    assert [r.step_runs.get(step_key="sms").status for r in runs] == ["succeeded", "succeeded", "capped"]
    assert settings.REDIS_URL or CountedCall.objects.count() == 2


def test_a_replayed_call_is_not_counted_again(world, sms, answers):
    cap(world)
    journey(world, sms, "Cart", "cart_abandoned", on_capped="capped")
    answers[0].append(404)
    send(world)
    drain()
    failed = Invocation.objects.get()
    assert failed.status == "failed"
    invocation_replay(invocation=failed)
    drain()
    assert Invocation.objects.filter(replay_of=failed, status="succeeded").exists()
    send(world)
    drain()  # the second call of the week: within the cap although the first was sent twice
    send(world)
    drain()
    statuses = [r.step_runs.get(step_key="sms").status for r in JourneyRun.objects.order_by("started_at")]
    assert statuses == ["failed", "succeeded", "capped"] and len(answers[1]) == 3  # 404, its replay, the second


def test_a_step_asked_twice_is_counted_once(world):
    """A pass of the engine whose write was lost runs the step again with the same key: admitted, not counted."""
    profile = Profile.objects.create(organization=world.acme, external_id="p1")
    cap(world, max_calls=1)
    now = timezone.now()
    ask = {"organization_id": world.acme.pk, "profile_id": profile.pk, "categories": [SMS], "now": now}
    assert counting.call_admitted(key="run-1:3", **ask)
    assert counting.call_admitted(key="run-1:3", **ask)
    assert not counting.call_admitted(key="run-2:3", **ask)


# --- the counting itself, on each store, with a controllable clock ------------------------


@pytest.fixture(params=["database", "redis"])
def store(request, settings, world):
    if request.param == "redis":
        settings.REDIS_URL = request.getfixturevalue("redis_url")
    else:
        settings.REDIS_URL = ""
    return request.param


def _asker(world, profile_id, categories):
    def ask(key, now):
        return counting.call_admitted(
            organization_id=world.acme.pk, profile_id=profile_id, categories=categories, key=key, now=now
        )

    return ask


def test_the_period_slides(world, store):
    profile_id = 10_000 + uuid.uuid4().int % 100_000  # a key of its own on a shared Redis
    if store == "database":
        profile_id = Profile.objects.create(organization=world.acme, external_id="p1").pk
    cap(world, max_calls=2, period_days=7)
    ask = _asker(world, profile_id, [SMS])
    monday = datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert ask("a", monday) and ask("b", monday + timedelta(days=3))
    assert not ask("c", monday + timedelta(days=6, hours=23))  # both still in the last 7 days
    assert ask("d", monday + timedelta(days=7, seconds=1))  # Monday's has left the period
    assert not ask("e", monday + timedelta(days=8))  # Thursday's and this Monday's
    assert ask("f", monday + timedelta(days=10, seconds=1))


def test_several_caps_and_categories_are_checked_and_counted_together(world, store):
    profile_id = 10_000 + uuid.uuid4().int % 100_000
    if store == "database":
        profile_id = Profile.objects.create(organization=world.acme, external_id="p1").pk
    cap(world, max_calls=1, period_days=1)
    cap(world, max_calls=3, period_days=7)
    cap(world, max_calls=10, period_days=30, category="marketing")
    both, sms_only = _asker(world, profile_id, [SMS, "marketing"]), _asker(world, profile_id, [SMS])
    marketing = _asker(world, profile_id, ["marketing"])
    day = datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert both("a", day)
    assert not sms_only("b", day + timedelta(hours=1))  # one a day
    assert marketing("c", day + timedelta(hours=1))  # a capped call counted nowhere, the other category goes on
    assert both("d", day + timedelta(days=1, hours=1)) and both("e", day + timedelta(days=2, hours=1))
    assert not both("f", day + timedelta(days=3, hours=1))  # three a week
    assert marketing("g", day + timedelta(days=3, hours=1))
    # a, c, d, e, g: five of ten in the marketing category; the refused f took nothing.
    for n in range(5):
        assert marketing(f"m{n}", day + timedelta(days=4))
    assert not marketing("m5", day + timedelta(days=4))


def test_another_organizations_caps_do_not_apply(world, store):
    FrequencyCap.objects.create(organization=world.globex, category=SMS, max_calls=1, period_days=7)
    profile = Profile.objects.create(organization=world.acme, external_id="p1")
    ask = _asker(world, profile.pk, [SMS])
    assert all(ask(f"k{n}", timezone.now()) for n in range(3))


# --- two real workers at once --------------------------------------------------------------


@pytest.mark.worker
def test_two_workers_together_hold_the_cap_for_many_runs_of_one_profile(workers, world, sms, answers, settings):
    cap(world, max_calls=3)
    journey(world, sms, "Cart", "cart_abandoned", on_capped="capped")
    journey(world, sms, "Browse", "page_viewed", on_capped="capped")
    workers.start(concurrency=2)
    workers.start(concurrency=2, beat=False)
    _, raw = api_key_create(organization=world.acme, name="shop", scopes=["events:write"])
    client = key_client(raw)
    for n in range(16):  # one request each, so that both workers take runs of the same profile
        event = {"name": "cart_abandoned" if n % 2 else "page_viewed", "profile_id": "cust-1",
                 "profile": {"phone": "+33600000000", "first_name": "Ada"}}  # fmt: skip
        assert client.post("/api/v1/orgs/acme/events/", event, format="json").status_code == 202

    def all_ended():
        runs = list(JourneyRun.objects.exclude(status__in=JourneyRun.OPEN))
        return runs if len(runs) == 16 else None

    runs = wait_for(all_ended, timeout=60, message="16 runs to end")
    outcomes = sorted(r.step_runs.get(step_key="sms").status for r in runs)
    assert outcomes == ["capped"] * 13 + ["succeeded"] * 3
    assert len(answers[1]) == 3 and Invocation.objects.count() == 3
    if not settings.REDIS_URL:
        assert CountedCall.objects.count() == 3


@pytest.fixture(params=["database", "redis"])
def shared_store(request, settings, transactional_db):
    settings.REDIS_URL = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    return request.param


def test_admissions_at_the_same_moment_never_exceed_the_cap(world, shared_store):
    """Twenty callers with their own database connections admit calls of one profile at once: five get through."""
    profile = Profile.objects.create(organization=world.acme, external_id=f"p-{uuid.uuid4()}")
    cap(world, max_calls=5)
    now, results, start = timezone.now(), [], threading.Barrier(20)

    def admit(n):
        start.wait()
        try:
            results.append(_asker(world, profile.pk, [SMS])(f"run-{n}:1", now))
        finally:
            connection.close()

    threads = [threading.Thread(target=admit, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 20 and results.count(True) == 5
