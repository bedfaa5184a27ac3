"""Issue 16 (3): an action's templates are bounded at save, and one that cannot be rendered fails alone."""

import json

import pytest
from django.core.exceptions import ValidationError
from werkzeug import Response

from actions.models import Action
from journeys.models import JourneyRun
from journeys.services import events_ingest
from tests.actions.helpers import SMS_ACTION, make_action
from tests.conftest import token_client
from tests.journeys.helpers import cart_steps, drain, live_journey


def nested(levels: int, leaf="{{text}}"):
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.fixture
def tech(world):
    return token_client(world.user("technical"))


def post(tech, **overrides):
    return tech.post("/api/v1/orgs/acme/actions/", {**SMS_ACTION, **overrides}, format="json")


def test_a_body_nested_past_32_levels_is_a_400_on_body(tech):
    assert post(tech, name="Ok", body={"to": "{{phone}}", "deep": nested(31)}).status_code == 201
    answer = post(tech, body={"to": "{{phone}}", "deep": nested(40)})
    assert answer.status_code == 400
    assert answer.json()["errors"]["body"] == ["may be nested at most 32 levels deep."]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("body", {"to": "{{phone}}", "text": "{{text}}", "pad": "x" * 70_000}),
        ("body", [{"to": "{{phone}}", "text": "{{text}}"}] * 5_000),
        ("headers", [{"name": f"X-{i}", "value": "v" * 100} for i in range(400)]),
        ("query", [{"name": "q", "value": [[["deep"]]]}]),
        ("url", "https://sms.example.com/" + "a" * 9_000 + "/{{account}}/{{phone}}/{{text}}"),
        ("parameters", [*SMS_ACTION["parameters"], {"name": "p", "type": "object", "default": nested(12, 1)}]),
        ("response_schema", nested(50, {"type": "string"})),
    ],
)
def test_templates_over_their_bounds_are_a_400_naming_the_field(tech, field, value):
    answer = post(tech, **{field: value})
    assert answer.status_code == 400, answer.content
    assert field in answer.json()["errors"], answer.json()


def test_a_body_nested_700_levels_is_refused_by_the_service_the_admin_uses(world):
    """The admin's JSON field has no parser bound: the service refuses it before walking it."""
    with pytest.raises(ValidationError) as refused:
        make_action(world.acme, body=nested(700))
    assert "body" in refused.value.message_dict


def test_the_admin_form_refuses_a_700_level_body(world, client):
    client.force_login(world.user("technical"))
    page = client.get("/admin/actions/action/add/")
    assert page.status_code == 200
    before = Action.objects.count()
    form = page.context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    data.update({"name": "Deep", "url": "https://sms.example.com/x", "body": json.dumps(nested(700))})
    answer = client.post("/admin/actions/action/add/", data)
    assert answer.status_code == 200  # the form again, with its errors
    assert "nested at most 32 levels" in answer.content.decode()
    assert Action.objects.count() == before


@pytest.fixture
def poisoned(world, httpserver, allow_loopback):
    """An action stored before the bound (written past the service): its body nests 700 levels."""
    world.acme.allow_http = True
    world.acme.save()
    action = make_action(world.acme, name="Poisoned", url=httpserver.url_for("/p/{{account}}"), auth={"type": "none"})
    Action.objects.filter(pk=action.pk).update(body=nested(700))
    return action


def test_the_test_button_of_an_unrenderable_action_is_a_400(poisoned, tech):
    values = {"account": "a", "phone": "+1", "text": "t"}
    answer = tech.post(f"/api/v1/orgs/acme/actions/{poisoned.pk}/test/", {"parameters": values}, format="json")
    assert answer.status_code == 400
    assert "nested too deep" in str(answer.json())


def test_an_unrenderable_action_fails_its_own_runs_and_no_other(world, poisoned, httpserver):
    delivered = []
    httpserver.expect_request("/ok/a1").respond_with_handler(lambda r: delivered.append(r.json) or _ok())
    healthy = make_action(world.acme, name="Healthy", url=httpserver.url_for("/ok/{{account}}"), auth={"type": "none"})
    live_journey(world, cart_steps(poisoned.pk), "check", entry="poisoned")
    live_journey(world, cart_steps(healthy.pk), "check", entry="healthy")
    profile = {"phone": "+1", "first_name": "Ada"}
    events_ingest(organization=world.acme, events=[
        {"name": name, "profile_id": f"{name}-{i}", "data": {"total": 500.0}, "profile": profile}
        for i in range(3) for name in ("poisoned", "healthy")
    ])  # fmt: skip
    drain()
    runs = JourneyRun.objects.select_related("profile")
    for run in runs:
        sms = run.step_runs.get(step_key="sms")
        if run.profile.external_id.startswith("poisoned"):
            assert sms.status == "failed" and "nested too deep" in sms.error
        else:
            assert sms.status == "succeeded"
    assert runs.count() == 6 and all(run.status == "completed" for run in runs)
    assert len(delivered) == 3


def _ok() -> Response:
    return Response('{"id": "m"}', content_type="application/json")
