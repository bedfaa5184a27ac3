"""Send windows (quiet hours): the next opening across days, holidays and daylight-saving changes, and calls
held as pending rows until then, with a controllable clock (django.utils.timezone.now) instead of waiting."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from actions.models import Invocation
from actions.runtime import invocation_enqueue, invocation_send
from actions.send_windows import next_opening, profile_time_zone, send_window_problems, window_wait_shown
from actions.services.actions import action_create, action_update
from tests.actions.helpers import SMS_ACTION
from tests.conftest import token_client

PARIS = ZoneInfo("Europe/Paris")
EVERY_DAY = {"start": "09:00", "end": "20:00"}
VALUES = {"account": "acc1", "phone": "+33600000000", "text": "hello"}


def paris(*args) -> datetime:
    return datetime(*args, tzinfo=PARIS)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- the next opening, a pure function --------------------------------------------------


def test_a_call_due_at_22_in_paris_with_a_window_of_9_to_20_goes_at_9_the_next_day():
    assert next_opening(EVERY_DAY, PARIS, paris(2026, 6, 1, 22, 0)) == paris(2026, 6, 2, 9, 0)
    assert next_opening(EVERY_DAY, PARIS, paris(2026, 6, 1, 7, 30)) == paris(2026, 6, 1, 9, 0)
    inside = paris(2026, 6, 1, 12, 0)
    assert next_opening(EVERY_DAY, PARIS, inside) == inside
    assert next_opening(EVERY_DAY, PARIS, paris(2026, 6, 1, 20, 0)) == paris(2026, 6, 2, 9, 0)  # the end is out
    assert next_opening(None, PARIS, inside) == inside


def test_across_the_spring_change_9_oclock_is_an_hour_earlier_in_utc():
    # Sunday 29 March 2026, 02:00 CET -> 03:00 CEST in Paris.
    assert next_opening(EVERY_DAY, PARIS, paris(2026, 3, 28, 22, 0)) == utc(2026, 3, 29, 7, 0)
    assert next_opening(EVERY_DAY, PARIS, paris(2026, 3, 27, 22, 0)) == utc(2026, 3, 28, 8, 0)


def test_a_start_the_spring_change_skips_opens_when_the_clock_jumps_past_it():
    window = {"start": "02:30", "end": "05:00"}
    opening = next_opening(window, PARIS, paris(2026, 3, 28, 22, 0))
    assert opening == utc(2026, 3, 29, 1, 0) and opening.astimezone(PARIS).strftime("%H:%M") == "03:00"
    # A window wholly inside the gap never opens that day: the next day's.
    assert next_opening({"start": "02:10", "end": "02:40"}, PARIS, paris(2026, 3, 28, 22, 0)) == paris(
        2026, 3, 30, 2, 10
    )


def test_an_hour_the_autumn_change_repeats_opens_at_its_first_and_closes_at_its_second():
    # Sunday 25 October 2026, 03:00 CEST -> 02:00 CET: 02:00 to 03:00 happens twice.
    assert next_opening({"start": "02:30", "end": "05:00"}, PARIS, paris(2026, 10, 24, 22, 0)) == utc(
        2026, 10, 25, 0, 30
    )  # 02:30 CEST, the first time
    window = {"start": "01:00", "end": "02:30"}
    second_pass = utc(2026, 10, 25, 1, 15)  # 02:15 CET, the second time the clock shows it
    assert next_opening(window, PARIS, second_pass) == second_pass
    assert next_opening(window, PARIS, utc(2026, 10, 25, 1, 30)) == paris(2026, 10, 26, 1, 0)  # 02:30 CET: closed
    # Across the change, 9 o'clock is an hour later in UTC.
    assert next_opening(EVERY_DAY, PARIS, paris(2026, 10, 24, 22, 0)) == utc(2026, 10, 25, 8, 0)


def test_a_holiday_is_skipped_and_days_of_the_week_are_kept():
    weekdays = {**EVERY_DAY, "days": [0, 1, 2, 3, 4], "skip_dates": ["2026-12-25"]}
    # Thursday 24 December, 21:00: not Friday (Christmas), not the weekend: Monday 28th.
    assert next_opening(weekdays, PARIS, paris(2026, 12, 24, 21, 0)) == paris(2026, 12, 28, 9, 0)
    assert next_opening({**weekdays, "skip_dates": []}, PARIS, paris(2026, 12, 24, 21, 0)) == paris(2026, 12, 25, 9, 0)
    saturday = paris(2026, 6, 6, 10, 0)
    assert next_opening({**EVERY_DAY, "days": [0]}, PARIS, saturday) == paris(2026, 6, 8, 9, 0)


def test_an_overnight_window_runs_from_its_day_into_the_next():
    night = {"start": "22:00", "end": "06:00", "days": [4]}  # Friday night
    friday_late, saturday_early = paris(2026, 6, 5, 23, 0), paris(2026, 6, 6, 5, 59)
    assert next_opening(night, PARIS, friday_late) == friday_late
    assert next_opening(night, PARIS, saturday_early) == saturday_early
    assert next_opening(night, PARIS, paris(2026, 6, 6, 6, 0)) == paris(2026, 6, 12, 22, 0)
    whole_days = {"start": "00:00", "end": "00:00", "days": [5, 6]}  # equal times: the whole day
    assert next_opening(whole_days, PARIS, paris(2026, 6, 5, 23, 0)) == paris(2026, 6, 6, 0, 0)


@pytest.mark.parametrize(
    ("window", "field"),
    [
        ("9-20", "send_window"),
        ({"start": "9:00", "end": "20:00"}, "send_window.start"),
        ({"start": "09:00"}, "send_window.end"),
        ({"start": "09:00", "end": "24:00"}, "send_window.end"),
        ({**EVERY_DAY, "days": []}, "send_window.days"),
        ({**EVERY_DAY, "days": [1, 1]}, "send_window.days"),
        ({**EVERY_DAY, "days": [7]}, "send_window.days"),
        ({**EVERY_DAY, "days": [True]}, "send_window.days"),
        ({**EVERY_DAY, "skip_dates": ["2026-02-30"]}, "send_window.skip_dates"),
        ({**EVERY_DAY, "skip_dates": "2026-12-25"}, "send_window.skip_dates"),
        ({**EVERY_DAY, "hours": 3}, "send_window"),
    ],
)
def test_a_malformed_window_is_named_by_its_part(window, field):
    assert field in send_window_problems(window)
    assert next_opening(window, PARIS, paris(2026, 6, 1, 22, 0)) == paris(2026, 6, 1, 22, 0)  # never held by it


@pytest.mark.parametrize("value", ["Mars/Olympus", "../../../etc/passwd", "", None, 42, "x" * 500, "Europe/Paris\x00"])
def test_an_invalid_or_hostile_profile_time_zone_falls_back_to_the_organizations(value):
    assert profile_time_zone({"timezone": value}, attribute="timezone", default="Europe/Paris") == "Europe/Paris"
    assert profile_time_zone({"timezone": value}, attribute="timezone", default="Nowhere/Else") == "UTC"
    assert profile_time_zone({"tz": "Asia/Tokyo"}, attribute="tz", default="UTC") == "Asia/Tokyo"


def test_the_wait_is_said_in_the_profiles_time_zone():
    assert window_wait_shown(utc(2026, 6, 2, 7, 0), "Europe/Paris") == (
        "waiting for the send window until 2026-06-02 09:00 (Europe/Paris)"
    )
    assert window_wait_shown(None) == ""


# --- calls held as rows, with a controllable clock ----------------------------------------


class Clock:
    def __init__(self, monkeypatch, at: datetime):
        self.at = at
        monkeypatch.setattr(timezone, "now", lambda: self.at.astimezone(UTC))  # in UTC, as Django's clock answers


@pytest.fixture
def receiver(world, httpserver, allow_loopback):
    world.acme.allow_http = True
    world.acme.default_time_zone = "Europe/Paris"
    world.acme.save()
    httpserver.expect_request("/v1/acc1/messages").respond_with_json({"id": "m1"})
    return httpserver


@pytest.fixture
def windowed(world, receiver):
    url = receiver.url_for("/v1/{{account}}/messages")
    return action_create(organization=world.acme, data={**SMS_ACTION, "url": url, "send_window": EVERY_DAY})


def test_a_call_due_outside_its_window_waits_as_a_pending_row_and_is_sent_at_the_opening(
    monkeypatch, windowed, receiver
):
    clock = Clock(monkeypatch, paris(2026, 6, 1, 22, 0))
    invocation = invocation_enqueue(action=windowed, values=VALUES)
    invocation_send(invocation_id=invocation.pk)
    invocation.refresh_from_db()
    assert (invocation.status, invocation.attempts, len(receiver.log)) == ("pending", 0, 0)
    assert invocation.window_wait_until == invocation.next_attempt_at == utc(2026, 6, 2, 7, 0)  # 09:00 in Paris
    clock.at = utc(2026, 6, 2, 6, 59)
    invocation_send(invocation_id=invocation.pk)
    assert len(receiver.log) == 0  # not due yet
    clock.at = utc(2026, 6, 2, 7, 0)
    invocation_send(invocation_id=invocation.pk)
    invocation.refresh_from_db()
    assert (invocation.status, invocation.window_wait_until, len(receiver.log)) == ("succeeded", None, 1)


def test_holding_calls_costs_no_query_per_call(monkeypatch, windowed):
    Clock(monkeypatch, paris(2026, 6, 1, 22, 0))

    def statements(count: int) -> int:
        first = [invocation_enqueue(action=windowed, values=VALUES) for _ in range(count)][0]
        with CaptureQueriesContext(connection) as queries:
            invocation_send(invocation_id=first.pk)
        return len([q for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))])

    assert statements(1) == statements(20)
    assert Invocation.objects.filter(status="pending", window_wait_until__isnull=False).count() == 21


def test_a_held_call_is_released_when_the_actions_window_changes(monkeypatch, windowed, receiver):
    clock = Clock(monkeypatch, paris(2026, 6, 1, 22, 0))
    invocation = invocation_enqueue(action=windowed, values=VALUES)
    invocation_send(invocation_id=invocation.pk)
    action_update(action=windowed, data={"send_window": {"start": "06:00", "end": "07:00"}})
    invocation.refresh_from_db()
    assert invocation.next_attempt_at == clock.at  # due now, to be weighed under the new window
    invocation_send(invocation_id=invocation.pk)
    invocation.refresh_from_db()
    assert invocation.status == "pending" and invocation.window_wait_until == paris(2026, 6, 2, 6, 0)
    action_update(action=windowed, data={"send_window": None})
    invocation_send(invocation_id=invocation.pk)
    invocation.refresh_from_db()
    assert (invocation.status, invocation.window_wait_until, len(receiver.log)) == ("succeeded", None, 1)


def test_an_edit_that_leaves_the_window_alone_leaves_held_calls_alone(monkeypatch, windowed):
    Clock(monkeypatch, paris(2026, 6, 1, 22, 0))
    invocation = invocation_enqueue(action=windowed, values=VALUES)
    invocation_send(invocation_id=invocation.pk)
    action_update(action=windowed, data={"description": "Shorter."})
    invocation.refresh_from_db()
    assert invocation.next_attempt_at == utc(2026, 6, 2, 7, 0)


def test_a_retry_due_outside_the_window_waits_for_it_too(monkeypatch, settings, world, httpserver, allow_loopback):
    settings.CONDUIT_RETRY_BASE_S = 1.0  # the retry comes at least 0.75 s later: past 10:00
    world.acme.allow_http = True
    world.acme.save()
    httpserver.expect_request("/v1/acc1/messages").respond_with_data("busy", status=503)
    url = httpserver.url_for("/v1/{{account}}/messages")
    window = {"start": "09:00", "end": "10:00"}  # UTC, the organization's default
    action = action_create(organization=world.acme, data={**SMS_ACTION, "url": url, "send_window": window})
    clock = Clock(monkeypatch, utc(2026, 6, 1, 9, 59, 59, 500_000))
    invocation = invocation_enqueue(action=action, values=VALUES)
    invocation_send(invocation_id=invocation.pk)
    invocation.refresh_from_db()
    assert invocation.attempts == 1 and invocation.status == "pending"
    clock.at = invocation.next_attempt_at
    invocation_send(invocation_id=invocation.pk)
    invocation.refresh_from_db()
    assert invocation.attempts == 1 and invocation.window_wait_until == utc(2026, 6, 2, 9, 0)


# --- the API -----------------------------------------------------------------------------


ACTIONS = "/api/v1/orgs/acme/actions/"


def test_the_api_saves_a_window_and_refuses_a_malformed_one_naming_its_part(world, receiver):
    client = token_client(world.user("technical"))
    url = receiver.url_for("/v1/{{account}}/messages")
    window = {"days": [0, 1, 2, 3, 4], "start": "22:00", "end": "06:00", "skip_dates": ["2026-12-25"]}
    created = client.post(ACTIONS, {**SMS_ACTION, "url": url, "send_window": window}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["send_window"] == window
    detail = f"{ACTIONS}{created.json()['id']}/"
    for bad, field in [({"start": "25:00", "end": "06:00"}, "send_window.start"), ([1], "send_window"),
                       ({**window, "days": "weekdays"}, "send_window.days")]:  # fmt: skip
        refused = client.patch(detail, {"send_window": bad}, format="json")
        assert refused.status_code == 400 and field in refused.json()["errors"], refused.content
    assert client.patch(detail, {"send_window": None}, format="json").json()["send_window"] is None


def test_a_held_calls_wait_shows_in_the_invocation_api(monkeypatch, world, windowed):
    Clock(monkeypatch, paris(2026, 6, 1, 22, 0))
    invocation = invocation_enqueue(action=windowed, values=VALUES)
    invocation_send(invocation_id=invocation.pk)
    shown = token_client(world.user("viewer")).get(f"/api/v1/orgs/acme/invocations/{invocation.pk}/").json()
    assert shown["window_wait_until"] == "2026-06-02T07:00:00Z" and shown["status"] == "pending"
    other = token_client(world.globex_admin.user).get(f"/api/v1/orgs/acme/invocations/{invocation.pk}/")
    assert other.status_code == 404


def test_a_replay_keeps_the_calls_window_and_time_zone(world, windowed):
    from actions.services.replays import invocation_replay

    failed = Invocation.objects.create(
        organization=world.acme, action=windowed, request={"url": "x"}, status="failed",
        send_window={"start": "10:00", "end": "11:00"}, time_zone="Asia/Tokyo",
    )  # fmt: skip
    replay = invocation_replay(invocation=failed)
    assert (replay.send_window, replay.time_zone) == (failed.send_window, "Asia/Tokyo")


def test_calls_held_for_a_window_do_not_count_as_a_rate_limits_backlog(monkeypatch, windowed):
    from actions.runtime import dispatch, ratelimit

    Clock(monkeypatch, paris(2026, 6, 1, 22, 0))
    held = [invocation_enqueue(action=windowed, values=VALUES) for _ in range(3)]
    invocation_send(invocation_id=held[0].pk)
    waiting = invocation_enqueue(action=windowed, values=VALUES)
    monkeypatch.setattr(dispatch, "_backlog", {})
    assert dispatch.backlog_s(waiting, [ratelimit.Limit("action:x", 1, 1)]) == 1.0  # itself, not the three held
