"""Journey expressions: the SPEC's examples, errors with positions, and no way out of the sandbox."""

import hashlib
from datetime import UTC, datetime

import pytest

from journeys.expressions import EvaluationError, ExpressionError, compile_expression

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
DATA = {
    "profile": {"first_name": "Ada", "country": "FR", "phone": "+33600000000"},
    "event": {"name": "cart_abandoned", "data": {"total": 120.5, "items": [1, 2]}},
    "steps": {"sms": {"status": "http_404", "response": None, "error_response": {"code": "unknown"}}},
    "now": NOW,
}


@pytest.mark.parametrize(
    "source, expected",
    [
        ("profile.first_name", "Ada"),
        ('"Bonjour " + profile.first_name', "Bonjour Ada"),
        ('event.data.total > 100.0 && profile.country == "FR"', True),
        ('steps.sms.status == "http_404"', True),
        ('steps.sms.error_response.code == "unknown"', True),
        ("size(event.data.items) == 2", True),
        ('now > timestamp("2026-01-01T00:00:00Z")', True),
    ],
)
def test_the_spec_examples_evaluate(source, expected):
    assert compile_expression(source).evaluate(**DATA) == expected


def test_a_parse_error_names_the_position():
    with pytest.raises(ExpressionError) as caught:
        compile_expression("profile.first_name +")
    assert (caught.value.line, caught.value.column) == (1, 21)
    assert "does not parse" in str(caught.value) and "line 1, column 21" in str(caught.value)


def test_only_the_four_roots_are_visible():
    with pytest.raises(ExpressionError, match="unknown name 'os'; expressions see profile, event, steps, now"):
        compile_expression("os.environ")


def test_step_references_are_collected_outside_strings():
    expression = compile_expression('steps.sms.status == "steps.fake" || steps.email.status == "succeeded"')
    assert expression.step_references == {"sms", "email"}


@pytest.mark.parametrize("source", ["profile.__class__", "profile.__dict__", 'profile["__class__"]'])
def test_python_internals_are_missing_fields_not_a_way_out(source):
    with pytest.raises(EvaluationError, match="no field"):
        compile_expression(source).evaluate(**DATA)


def test_very_deep_nesting_and_huge_expressions_are_refused_cleanly():
    with pytest.raises(ExpressionError):
        compile_expression("(" * 500 + "1" + ")" * 500)
    with pytest.raises(ExpressionError, match="longer than"):
        compile_expression("1 + " * 1000 + "1")


def test_a_missing_field_at_run_time_is_an_evaluation_error():
    with pytest.raises(EvaluationError, match="no field 'last_name'"):
        compile_expression("profile.last_name").evaluate(**DATA)


def test_a_type_mismatch_at_run_time_is_an_evaluation_error():
    with pytest.raises(EvaluationError):
        compile_expression("profile.first_name + 1").evaluate(**DATA)


def test_an_empty_expression_is_refused():
    with pytest.raises(ExpressionError, match="required"):
        compile_expression("  ")


@pytest.mark.parametrize(
    "source, expected",
    [
        # Meta's Conversions API takes SHA-256 of the trimmed, lowercased email.
        ('sha256(trim(lower(" Ada@Example.com ")))', hashlib.sha256(b"ada@example.com").hexdigest()),
        ('"Ada".upper()', "ADA"),
        ("lower(profile.country)", "fr"),
    ],
)
def test_text_functions_providers_ask_for(source, expected):
    assert compile_expression(source).evaluate(**DATA) == expected


def test_a_text_function_given_a_number_fails_with_a_sentence():
    with pytest.raises(EvaluationError, match=r"sha256\(\) takes text, got float"):
        compile_expression("sha256(event.data.total)").evaluate(**DATA)


@pytest.mark.parametrize("number", [10**400, -(10**309)])
def test_an_integer_past_a_doubles_range_in_the_data_is_an_evaluation_error(number):
    """Events and profiles may carry any JSON integer; expressions cannot: the run follows on_error."""
    data = {**DATA, "profile": {**DATA["profile"], "score": number}}
    with pytest.raises(EvaluationError, match="out of range: expressions take numbers up to about 1.8e308"):
        compile_expression("profile.first_name").evaluate(**data)


@pytest.mark.parametrize("source", [[], {}, 1, True])
def test_an_expression_that_is_not_text_is_named_at_save(source):
    from journeys.validation import check_shape

    steps = [{"key": "c", "type": "condition", "branches": [{"expression": source, "next": "e"}], "else": "e"},
             {"key": "e", "type": {"not": "a type"}}]  # fmt: skip
    assert check_shape(steps, "c") == {
        "steps[c].branches[0].expression": ["must be an expression, written as text"],
        "steps[e].type": ["must be one of action, condition, wait, split, wait_event, jump, end"],
    }
