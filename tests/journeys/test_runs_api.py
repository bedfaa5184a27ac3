"""Runs, reports and test mode through the API, as a marketer, a technical user and a viewer see them."""

from journeys.models import JourneyRun
from tests.conftest import token_client
from tests.journeys.helpers import cart_steps, drain, live_journey, send

ORG = "/api/v1/orgs/acme"


def test_runs_are_listed_with_their_steps_in_order_and_filtered(world, action, receiver):
    journey = live_journey(world, cart_steps(action.pk), "check")
    send(world, profile="big", total=150.0)
    send(world, profile="small", total=5.0)
    drain()
    viewer = token_client(world.user("viewer"))
    runs = viewer.get(f"{ORG}/runs/").json()["results"]
    assert {r["profile"] for r in runs} == {"big", "small"}
    big = viewer.get(f"{ORG}/runs/", {"profile": "big"}).json()["results"]
    assert [s["key"] for s in big[0]["steps"]] == ["check", "sms", "sent"]
    assert big[0]["steps"][1]["outcome"] == "succeeded" and big[0]["steps"][1]["invocation"]
    assert big[0]["journey"] == journey.pk and big[0]["status"] == "completed"
    assert viewer.get(f"{ORG}/runs/", {"status": "failed"}).json()["count"] == 0
    assert viewer.get(f"{ORG}/runs/", {"journey": journey.pk}).json()["count"] == 2
    assert viewer.get(f"{ORG}/runs/", {"journey": "x"}).status_code == 400
    detail = viewer.get(f"{ORG}/runs/{big[0]['id']}/").json()
    assert [s["sequence"] for s in detail["steps"]] == [1, 2, 3]


def test_report_counts_each_step(world, action, receiver):
    journey = live_journey(world, cart_steps(action.pk), "check")
    send(world, profile="a", total=150.0)
    send(world, profile="b", total=150.0, phone="+404")
    send(world, profile="c", total=5.0)
    drain()
    report = token_client(world.user("viewer")).get(f"{ORG}/journeys/{journey.pk}/report/").json()
    steps = {s["key"]: s for s in report["steps"]}
    assert steps["check"] == {"key": "check", "type": "condition", "entered": 3, "succeeded": 3, "failed": 0,
                              "waiting": 0, "exited": 0, "capped": 0, "percent": {"entered": 100.0,
                              "succeeded": 100.0, "failed": 0.0, "waiting": 0.0, "exited": 0.0, "capped": 0.0},
                              "branches": [{"outcome": "branches[0]", "runs": 2, "percent": 66.7},
                                           {"outcome": "else", "runs": 1, "percent": 33.3}]}  # fmt: skip
    assert (steps["sms"]["entered"], steps["sms"]["succeeded"], steps["sms"]["failed"]) == (2, 1, 1)
    assert steps["sent"]["exited"] == 1 and steps["not_found"]["exited"] == 1 and steps["small"]["exited"] == 1
    assert report["runs"]["completed"] == 3


def test_report_counts_waiting_runs(world, action, receiver):
    steps = [{"key": "pause", "type": "wait", "duration_s": 3600, "next": "done"}, {"key": "done", "type": "end"}]
    journey = live_journey(world, steps, "pause")
    send(world)
    drain()
    report = token_client(world.user("viewer")).get(f"{ORG}/journeys/{journey.pk}/report/").json()
    assert report["steps"][0]["waiting"] == 1 and report["runs"]["waiting"] == 1


def test_dry_run_shows_the_path_and_rendered_requests_and_sends_nothing(world, action, receiver):
    journey = live_journey(world, cart_steps(action.pk), "check")
    technical = token_client(world.user("technical"))
    body = {"profile": {"phone": "+33611111111", "first_name": "Bo"}, "event": {"data": {"total": 500.0}}}
    answer = technical.post(f"{ORG}/journeys/{journey.pk}/test/", body, format="json").json()
    assert answer["dry_run"] is True and answer["result"] == "completed"
    assert [(p["key"], p.get("outcome")) for p in answer["path"]] == [
        ("check", "branches[0]"), ("sms", "succeeded"), ("sent", None)]  # fmt: skip
    sms = answer["path"][1]
    assert sms["parameters"] == {"account": "a1", "phone": "+33611111111", "text": "Hi Bo"}
    assert sms["request"]["url"].endswith("/v1/accounts/a1/messages")
    assert sms["request"]["body"] == '{"to":"+33611111111","text":"Hi Bo"}'
    assert receiver == [] and not JourneyRun.objects.exists()


def test_a_real_test_sends_the_call_and_branches_on_its_answer(world, action, receiver):
    journey = live_journey(world, cart_steps(action.pk), "check")
    technical = token_client(world.user("technical"))
    body = {"profile": {"phone": "+404", "first_name": "Bo"}, "event": {"data": {"total": 500.0}}, "dry_run": False}
    answer = technical.post(f"{ORG}/journeys/{journey.pk}/test/", body, format="json").json()
    assert [p["key"] for p in answer["path"]] == ["check", "sms", "missing", "not_found"]
    assert answer["path"][1]["outcome"] == "http_404"
    assert answer["path"][1]["response"] == {"status_code": 404, "body": {"id": "m1"}, "error": ""}
    assert receiver == [{"to": "+404", "text": "Hi Bo"}]


def test_a_marketer_testing_sees_values_and_outcomes_never_the_request(world, action, receiver):
    journey = live_journey(world, cart_steps(action.pk), "check")
    marketer = token_client(world.user("marketer"))
    body = {"profile": {"phone": "+33611111111", "first_name": "Bo"}, "event": {"data": {"total": 500.0}},
            "dry_run": False}  # fmt: skip
    answer = marketer.post(f"{ORG}/journeys/{journey.pk}/test/", body, format="json").json()
    sms = answer["path"][1]
    assert "request" not in sms and sms["response"] == {"status_code": 200}
    assert sms["parameters"]["text"] == "Hi Bo" and "127.0.0.1" not in str(answer)


def test_waits_are_skipped_and_expression_errors_follow_on_error(world, action, receiver):
    steps = [{"key": "pause", "type": "wait", "duration_s": 86400, "next": "sms"}, *cart_steps(action.pk)[1:]]
    steps[1]["parameters"] = {**steps[1]["parameters"], "phone": "profile.missing"}
    journey = live_journey(world, steps, "pause")
    body = {"profile": {"first_name": "Bo"}}
    answer = token_client(world.user("marketer")).post(f"{ORG}/journeys/{journey.pk}/test/", body, format="json").json()
    assert answer["path"][0]["outcome"] == "skipped"
    assert answer["path"][1]["outcome"] == "error" and "missing" in answer["path"][1]["error"]
    assert [p["key"] for p in answer["path"]] == ["pause", "sms", "missing", "small"]


def test_testing_a_journey_with_problems_lists_them(world, action):
    from journeys.services import journey_create

    draft = journey_create(organization=world.acme, data={"name": "Broken", "entry_event": "x", "start": "nowhere",
                                                          "steps": [{"key": "done", "type": "end"}]})  # fmt: skip
    response = token_client(world.user("marketer")).post(f"{ORG}/journeys/{draft.pk}/test/", {}, format="json")
    assert response.status_code == 400 and "start" in response.json()["errors"]


def test_test_mode_refuses_unknown_fields_and_wrong_types(world, action):
    journey = live_journey(world, cart_steps(action.pk), "check")
    marketer = token_client(world.user("marketer"))
    url = f"{ORG}/journeys/{journey.pk}/test/"
    response = marketer.post(url, {"dryrun": True}, format="json")
    assert response.status_code == 400 and "dryrun" in response.json()["errors"]
    response = marketer.post(url, {"profile": [1], "dry_run": "perhaps"}, format="json")
    assert response.status_code == 400 and {"profile", "dry_run"} <= set(response.json()["errors"])


def test_another_organizations_runs_are_not_found(world, action, receiver):
    live_journey(world, cart_steps(action.pk), "check")
    send(world)
    drain()
    run = JourneyRun.objects.get()
    other = token_client(world.globex_admin.user)
    assert other.get(f"/api/v1/orgs/globex/runs/{run.pk}/").status_code == 404
    assert other.get("/api/v1/orgs/globex/runs/").json()["count"] == 0


def test_the_admin_shows_a_run_with_its_steps_and_links_to_its_call(world, action, receiver, client):
    import re

    from django.urls import reverse

    live_journey(world, cart_steps(action.pk), "check")
    send(world)
    drain()
    run = JourneyRun.objects.get()
    client.force_login(world.user("viewer"))
    changelist = client.get(reverse("admin:journeys_journeyrun_changelist")).content.decode()
    assert "cust-1" in changelist and "completed" in changelist.lower()
    page = client.get(reverse("admin:journeys_journeyrun_change", args=[run.pk])).content.decode()
    invocation = run.step_runs.get(step_key="sms").invocation_id
    assert reverse("admin:actions_invocation_change", args=[invocation]) in page
    keys = re.findall(r'field-step_key">\s*<p>(\w+)</p>', page)
    assert keys == ["check", "sms", "sent"], keys
    assert "Save" not in page
