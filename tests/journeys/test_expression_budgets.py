"""Issue 16 (2): every expression has a budget, at save and at evaluation; one organization's
expressions never stall another's."""

from datetime import UTC, datetime

import pytest

from journeys.engine import events_process, runs_advance
from journeys.expressions import EvaluationError, charged_to, evaluate
from journeys.models import JourneyRun
from journeys.services import events_ingest, journey_create, journey_publish
from tests.conftest import token_client

JOURNEYS = "/api/v1/orgs/acme/journeys/"
LIST = "event.data.l"
QUADRATIC = f"{LIST}.map(a, {LIST}.map(b, a * b)).size() > 0"  # 3,000 items: 9 million steps


def scope(**data) -> dict:
    return {"profile": {}, "event": {"name": "e", "data": data}, "steps": {}, "now": datetime.now(UTC)}


def branching(expression: str, name="Budget", entry="go") -> dict:
    return {
        "name": name, "entry_event": entry, "reentry": "always", "start": "check",
        "steps": [
            {"key": "check", "type": "condition", "branches": [{"expression": expression, "next": "yes"}],
             "else": "no", "on_error": "err"},
            {"key": "yes", "type": "end"}, {"key": "no", "type": "end"}, {"key": "err", "type": "end"},
        ],
    }  # fmt: skip


@pytest.fixture
def marketer(world):
    return token_client(world.user("marketer"))


# --- at save ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("[1].map(a, [2].map(b, [3].map(c, c))).size() > 0", "nests loops 3 deep; at most 2"),
        ("[1].exists(a, [2].all(b, [3].filter(c, c > b).size() > a))", "nests loops 3 deep"),
        (" || ".join(["[1].exists(x, x == 1)"] * 9), "has 9 loops"),
        ("[1].map(event, event).size() > 0", "cannot be named event"),
        ("[1].exists(now, now == 1)", "cannot be named now"),
    ],
)
def test_an_expression_over_its_budget_is_a_400_at_save_naming_the_field(marketer, expression, problem):
    answer = marketer.post(JOURNEYS, branching(expression), format="json")
    assert answer.status_code == 400
    [message] = answer.json()["errors"]["steps[check].branches[0].expression"]
    assert problem in message


def test_loops_within_the_budget_are_saved_and_give_their_answers(marketer, world):
    expression = 'event.data.items.exists(i, i.sku == "A") && event.data.items.map(i, i.price).all(p, p > 0)'
    assert marketer.post(JOURNEYS, branching(expression), format="json").status_code == 201
    items = [{"sku": "A", "price": 3}, {"sku": "B", "price": 4}]
    assert evaluate(expression, scope(items=items)) is True
    assert evaluate("event.data.items.filter(i, i.price > 3).size()", scope(items=items)) == 1
    with pytest.raises(EvaluationError, match="no_such"):
        evaluate("event.data.items.exists(i, i.no_such == 1)", scope(items=items))


# --- at evaluation ---------------------------------------------------------------------


def test_an_expression_past_its_time_is_stopped_with_a_clear_reason(db):
    with pytest.raises(EvaluationError, match=r"over budget: the expression took longer than 200 ms"):
        evaluate(QUADRATIC, scope(l=list(range(3000))))
    assert evaluate(f"{LIST}.exists(x, x == 2)", scope(l=[1, 2])) is True  # the next one runs as usual


def test_an_expression_past_its_memory_is_stopped_with_a_clear_reason(db, settings):
    settings.CONDUIT_EXPRESSION_TIME_LIMIT_MS = 10_000  # memory, not time, is what stops this one
    big = scope(s="x" * 1_000_000, l=list(range(400)))
    with pytest.raises(EvaluationError, match=r"needed more than 256 MB"):
        evaluate(f"{LIST}.map(a, event.data.s + string(a)).size() > 0", big)


def test_an_organization_that_spends_its_budget_gets_errors_and_others_do_not(db, settings):
    settings.CONDUIT_EXPRESSION_BUDGET_S = 0.5
    heavy = scope(l=list(range(3000)))
    reasons = []
    with charged_to(-1):
        for _ in range(6):
            with pytest.raises(EvaluationError) as failed:
                evaluate(QUADRATIC, heavy)
            reasons.append(str(failed.value))
    assert "took longer than" in reasons[0]
    assert "this organization's expressions with loops used their 0.5 s" in reasons[-1]
    with charged_to(-2):
        assert evaluate(f"{LIST}.exists(x, x == 2)", scope(l=[1, 2])) is True


def test_an_expression_over_budget_follows_on_error_and_another_organizations_run_completes(world):
    for organization, expression in ((world.acme, QUADRATIC), (world.globex, f"{LIST}.exists(x, x == 2)")):
        journey = journey_create(organization=organization, data=branching(expression))
        journey_publish(journey=journey)
    events_ingest(organization=world.acme, events=[
        {"name": "go", "profile_id": f"p{i}", "data": {"l": list(range(3000))}} for i in range(3)
    ])  # fmt: skip
    events_ingest(organization=world.globex, events=[{"name": "go", "profile_id": "g", "data": {"l": [1, 2]}}])
    for _ in range(3):
        events_process()
        runs_advance()
    runs = JourneyRun.objects.select_related("current_step_run")
    acme = [run for run in runs if run.organization_id == world.acme.pk]
    [globex] = [run for run in runs if run.organization_id == world.globex.pk]
    assert globex.status == "completed" and globex.current_step == "yes"
    assert len(acme) == 3
    for run in acme:
        check = run.step_runs.get(step_key="check")
        assert run.current_step == "err" and "over budget" in check.error, check.error
