"""Templates to exact bytes: each parameter type in each placement (SPEC section 2)."""

import pytest

from actions.delivery.rendering import RenderError, render_request

PARAMETERS = [
    {"name": "user_id", "type": "string"},
    {"name": "count", "type": "integer"},
    {"name": "amount", "type": "decimal"},
    {"name": "vip", "type": "boolean"},
    {"name": "at", "type": "datetime"},
    {"name": "day", "type": "date"},
    {"name": "tags", "type": "list"},
    {"name": "meta", "type": "object"},
    {"name": "note", "type": "string", "required": False},
    {"name": "lang", "type": "string", "required": False, "default": "fr"},
]
VALUES = {
    "user_id": "a/b c?é",
    "count": "42",
    "amount": "12.50",
    "vip": True,
    "at": "2026-11-29T10:00:00Z",
    "day": "2026-11-29",
    "tags": ["x", 1],
    "meta": {"k": [True, None]},
}


def _render(url="https://api.example.com/send", query=(), headers=(), body=None, values=None, method="POST"):
    return render_request(
        method=method, url=url, query=list(query), headers=list(headers), body=body,
        parameters=PARAMETERS, values=VALUES if values is None else values,
    )  # fmt: skip


@pytest.mark.parametrize(
    "name, body, expected",
    [
        ("whole string", {"v": "{{user_id}}"}, b'{"v":"a/b c?\xc3\xa9"}'),
        ("whole integer from text", {"v": "{{count}}"}, b'{"v":42}'),
        ("whole decimal", {"v": "{{amount}}"}, b'{"v":12.5}'),
        ("whole boolean", {"v": "{{vip}}"}, b'{"v":true}'),
        ("whole datetime", {"v": "{{at}}"}, b'{"v":"2026-11-29T10:00:00+00:00"}'),
        ("whole date", {"v": "{{day}}"}, b'{"v":"2026-11-29"}'),
        ("whole list", {"v": "{{tags}}"}, b'{"v":["x",1]}'),
        ("whole object", {"v": "{{ meta }}"}, b'{"v":{"k":[true,null]}}'),
        ("missing optional is null", {"v": "{{note}}"}, b'{"v":null}'),
        ("default applies", {"v": "{{lang}}"}, b'{"v":"fr"}'),
        ("inside a longer string", {"v": "Hi {{user_id}}, {{count}} x {{amount}} ({{vip}})"},
         b'{"v":"Hi a/b c?\xc3\xa9, 42 x 12.50 (true)"}'),
        ("list and object inside text", {"v": "tags={{tags}}"}, b'{"v":"tags=[\\"x\\",1]"}'),
        ("nested object", {"a": {"b": {"c": "{{count}}"}}, "k": 1}, b'{"a":{"b":{"c":42}},"k":1}'),
        ("inside a list", {"items": ["{{count}}", "n{{count}}", 3]}, b'{"items":[42,"n42",3]}'),
        ("array body", ["{{vip}}", {"x": "{{day}}"}], b'[true,{"x":"2026-11-29"}]'),
    ],
)  # fmt: skip
def test_body_placements_give_exact_bytes(name, body, expected):
    rendered = _render(body=body)
    assert rendered.body == expected
    assert rendered.header("Content-Type") == "application/json"


def test_path_placeholders_are_percent_encoded():
    rendered = _render(url="https://api.example.com/v2/users/{{user_id}}/n/{{count}}")
    assert rendered.url == "https://api.example.com/v2/users/a%2Fb%20c%3F%C3%A9/n/42"


def test_query_values_are_rendered_and_encoded():
    rendered = _render(
        url="https://api.example.com/x?fixed=1",
        query=[{"name": "u", "value": "{{user_id}}"}, {"name": "when", "value": "{{at}}"}],
    )
    assert rendered.url == (
        "https://api.example.com/x?fixed=1&u=a%2Fb+c%3F%C3%A9&when=2026-11-29T10%3A00%3A00%2B00%3A00"
    )


def test_header_values_are_rendered_as_text():
    rendered = _render(headers=[{"name": "X-Count", "value": "n={{count}} vip={{vip}}"}])
    assert ("X-Count", "n=42 vip=true") in rendered.headers


def test_get_sends_no_body():
    assert _render(method="GET", body={"v": 1}).body is None


def test_no_body_means_no_content_type():
    rendered = _render(body=None)
    assert rendered.body is None and rendered.header("Content-Type") is None


@pytest.mark.parametrize(
    "values, message",
    [
        ({**VALUES, "amount": "abc"}, 'parameter amount: expected decimal, got "abc"'),
        ({**VALUES, "count": "4.5"}, 'parameter count: expected integer, got "4.5"'),
        ({**VALUES, "count": True}, "parameter count: expected integer, got true"),
        ({**VALUES, "vip": "yes"}, 'parameter vip: expected boolean, got "yes"'),
        ({**VALUES, "at": "tomorrow"}, 'parameter at: expected datetime, got "tomorrow"'),
        ({**VALUES, "day": "2026-13-01"}, 'parameter day: expected date, got "2026-13-01"'),
        ({**VALUES, "tags": "x"}, 'parameter tags: expected list, got "x"'),
        ({**VALUES, "meta": [1]}, "parameter meta: expected object, got [1]"),
        ({**VALUES, "user_id": None}, "parameter user_id: required, but no value was given"),
        ({**VALUES, "surprise": 1}, "parameter surprise: not declared by this action"),
    ],
)
def test_values_are_checked_against_their_type(values, message):
    with pytest.raises(RenderError) as caught:
        _render(body={"v": "{{amount}}"}, values=values)
    assert message in caught.value.errors.values()


def test_a_value_cannot_inject_a_header_line():
    with pytest.raises(RenderError, match="line break"):
        _render(headers=[{"name": "X-U", "value": "{{user_id}}"}], values={**VALUES, "user_id": "a\r\nX-Evil: 1"})
