"""Expressions in plain words: a bare word reads as text that lost its quotes, and the customer's
external id is within reach as profile.external_id."""

import pytest

from journeys.expressions import ExpressionError, compile_expression
from journeys.models import JourneyRun
from tests.conftest import token_client
from tests.journeys.helpers import drain, live_journey, send

ORG = "/api/v1/orgs/acme"


def test_a_bare_word_is_explained_as_text_without_quotes():
    with pytest.raises(ExpressionError) as raised:
        compile_expression('event.data.channel == web && profile.country == "FR"')
    assert 'Text goes in quotes: "web"' in str(raised.value)


def test_the_explanation_reaches_the_api_on_the_step(world):
    marketer = token_client(world.user("marketer"))
    steps = [{"key": "pick", "type": "condition", "branches": [{"expression": "event.data.channel == web",
              "next": "done"}], "else": "done"}, {"key": "done", "type": "end"}]  # fmt: skip
    response = marketer.post(f"{ORG}/journeys/", {"name": "Channels", "entry_event": "visit", "start": "pick",
                                                   "steps": steps}, format="json")  # fmt: skip
    assert response.status_code == 400
    assert 'Text goes in quotes: \\"web\\"' in response.content.decode()


@pytest.mark.parametrize(("external_id", "ends_at"), [("cust-9", "known"), ("cust-1", "other")])
def test_a_condition_reads_the_customers_external_id(world, action, receiver, external_id, ends_at):
    steps = [
        {"key": "who", "type": "condition",
         "branches": [{"expression": 'profile.external_id == "cust-9"', "next": "known"}], "else": "other"},
        {"key": "known", "type": "end"},
        {"key": "other", "type": "end"},
    ]  # fmt: skip
    live_journey(world, steps, "who")
    send(world, profile=external_id)
    drain()
    run = JourneyRun.objects.get()
    assert run.status == "completed"
    assert list(run.step_runs.order_by("sequence").values_list("step_key", flat=True)) == ["who", ends_at]
