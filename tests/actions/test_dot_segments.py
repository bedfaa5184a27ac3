"""Issue 16 (9): a path parameter stays inside its segment: `.` and `..` never move the call."""

import pytest

from actions.delivery.rendering import RenderError, render_request
from actions.models import Action
from actions.runtime import invocation_enqueue, invocation_send
from tests.actions.helpers import make_action
from tests.conftest import token_client

PARAMETERS = [
    {"name": "a", "type": "string", "required": True, "description": "A"},
    {"name": "b", "type": "string", "required": False, "default": "x", "description": "B"},
]


def rendered_url(url: str, **values) -> str:
    return render_request(
        method="POST", url=url, query=[], headers=[], body=None, parameters=PARAMETERS, values=values
    ).url


@pytest.mark.parametrize("value", ["..", "."])
def test_a_parameter_that_is_a_dot_segment_is_refused(value):
    with pytest.raises(RenderError) as refused:
        rendered_url("https://sms.example.com/v1/accounts/{{a}}/messages", a=value)
    assert refused.value.errors == {"a": "parameter a: a path segment cannot be . or .."}


@pytest.mark.parametrize(
    ("url", "values"),
    [
        ("https://sms.example.com/v1/{{a}}{{b}}/messages", {"a": ".", "b": "."}),  # two values make one
        ("https://sms.example.com/v1/{{a}}./messages", {"a": "."}),  # a value and the template's text
        ("https://sms.example.com/v1/{{a}}", {"a": ".."}),  # the last segment
        ("https://sms.example.com/v1/{{a}}%2E/messages", {"a": "."}),  # with the template's encoded dot
    ],
)
def test_values_that_together_make_a_dot_segment_are_refused(url, values):
    with pytest.raises(RenderError):
        rendered_url(url, **values)


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("../admin", "..%2Fadmin"),  # a slash is encoded: one segment, not two
        ("%2e%2e", "%252e%252e"),  # percent signs are encoded: the server reads %2e%2e as text
        ("...", "..."),  # three dots are a name, not a dot segment
        ("a..b", "a..b"),
        ("．．", "%EF%BC%8E%EF%BC%8E"),  # full-width dots stay encoded text
    ],
)
def test_other_values_stay_inside_their_segment(value, sent):
    assert rendered_url("https://sms.example.com/v1/accounts/{{a}}/messages", a=value) == (
        f"https://sms.example.com/v1/accounts/{sent}/messages"
    )


def test_a_dot_segment_written_by_the_action_itself_is_its_own_choice():
    assert rendered_url("https://sms.example.com/v1/../v2/{{a}}", a="x") == "https://sms.example.com/v1/../v2/x"


def test_the_test_button_and_the_runtime_refuse_it_and_nothing_is_sent(world, httpserver, allow_loopback):
    world.acme.allow_http = True
    world.acme.save()
    httpserver.expect_request("/v1/admin/messages").respond_with_json({"leaked": True})
    action = make_action(world.acme, url=httpserver.url_for("/v1/accounts/{{account}}/messages"))
    tech = token_client(world.user("technical"))
    values = {"account": "..", "phone": "+1", "text": "hi"}
    answer = tech.post(f"/api/v1/orgs/acme/actions/{action.pk}/test/", {"parameters": values}, format="json")
    assert answer.status_code == 400
    assert "a path segment cannot be . or .." in str(answer.json()["errors"])
    invocation = invocation_enqueue(action=Action.objects.get(pk=action.pk), values=values)
    invocation_send(invocation_id=invocation.pk)
    invocation.refresh_from_db()
    assert invocation.status == "failed" and "path segment" in invocation.error
    assert httpserver.log == []
