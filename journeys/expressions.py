"""Journey expressions in CEL (SPEC section 5), through common-expression-language.

Chosen over cel-python after `bench/expressions.py`: the same answers on our expressions,
about 8 times faster per evaluation on this machine (a compiled Rust program). Expressions
see `profile`, `event`, `steps` and `now`, nothing else; CEL has no way to Python objects.
Besides CEL's own functions: lower, upper, trim and sha256 of text.

Budgets (issue 16): at save, an expression may hold at most MAX_LOOPS loops (map, filter, all,
exists, exists_one), nested at most MAX_NESTED_LOOPS deep. At evaluation, an expression with a
loop runs in a child process under a time and memory limit (`expression_sandbox`), and each
organization's loops share a time budget per window in each worker process: an organization
whose expressions spend it gets errors (its runs follow on_error), never another's time.
"""

import contextlib
import contextvars
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import cel

ROOTS = ("profile", "event", "steps", "now")
MAX_LENGTH = 2000
_POSITION = re.compile(r"<input>:(\d+):(\d+):\s*(.*)")
_STRINGS = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
_STEP_REFERENCE = re.compile(r"\bsteps\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_FIELD_READ = re.compile(r"(?<![.\w])(profile|event\s*\.\s*data)\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
MACROS = ("map", "filter", "all", "exists", "exists_one")
# Any mention of a macro's name, strings and comments included: what may loop is never missed.
_MAY_LOOP = re.compile(rf"\b(?:{'|'.join(MACROS)})\b")
_LOOP = re.compile(rf"\.\s*(?:{'|'.join(MACROS)})\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)?")
MAX_LOOPS = 8
MAX_NESTED_LOOPS = 2


def _(message: str) -> str:
    """Django's gettext, imported only when a message is made: the sandbox's child imports this module
    without Django (expression_sandbox) and never makes one."""
    from django.utils.translation import gettext

    return gettext(message)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}() takes text, got {type(value).__name__}")
    return value


# What CEL's standard library lacks and providers ask for: Meta's Conversions API, for one,
# takes identifiers as SHA-256 of the trimmed, lowercased value: sha256(trim(lower(profile.email))).
FUNCTIONS = {
    "lower": lambda value: _text("lower", value).lower(),
    "upper": lambda value: _text("upper", value).upper(),
    "trim": lambda value: _text("trim", value).strip(),
    "sha256": lambda value: hashlib.sha256(_text("sha256", value).encode()).hexdigest(),
}


_local = threading.local()


def _context() -> Any:
    """This thread's CEL context with the functions in: made once, it costs nothing per evaluation."""
    context = getattr(_local, "context", None)
    if context is None:
        context = _local.context = cel.Context()
        for name, function in FUNCTIONS.items():
            context.add_function(name, function)
    return context


class ExpressionError(ValueError):
    """An expression that cannot be used; `line` and `column` point at the problem when known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        said = _("%(message)s (line %(line)s, column %(column)s)") if line is not None else "%(message)s"
        super().__init__(said % {"message": message, "line": line, "column": column})
        self.message, self.line, self.column = message, line, column


class EvaluationError(RuntimeError):
    """An expression that compiled but failed on this run's data, e.g. a missing field."""


@dataclass(frozen=True)
class Expression:
    source: str
    program: Any
    step_references: frozenset[str]
    loops: bool = False  # evaluated in the sandbox, under limits

    def evaluate(self, *, profile: dict, event: dict, steps: dict, now: datetime) -> Any:
        scope = {"profile": profile, "event": event, "steps": steps, "now": now}  # all four, every time
        if self.loops:
            return _evaluate_limited(self.source, scope)
        try:
            context = _context()
            context.update(scope)  # converts the data: an integer past a double's range fails here
            return self.program.execute(context)
        except KeyError as exc:
            raise EvaluationError(f"no field {exc.args[0]!r} in the data") from None
        except Exception as exc:  # the library raises plain errors for type mismatches and the like
            raise EvaluationError(_message(exc)) from None


def _message(exc: Exception) -> str:
    """The library's error in a sentence for the run."""
    message = str(exc).split("\n")[0]
    if "Failed to convert Python object of type int" in message:  # converting the data, before evaluating
        return "a number in the data is out of range: expressions take numbers up to about 1.8e308"
    return message


@lru_cache(maxsize=1024)
def _program(source: str) -> Any:
    return cel.compile(source)


def run_program(source: str, scope: dict[str, Any]) -> Any:
    """Evaluate an expression already checked at save (the sandbox's side: no Django, no limits here)."""
    try:
        context = _context()
        context.update(scope)
        return _program(source).execute(context)
    except KeyError as exc:
        raise ValueError(f"no field {exc.args[0]!r} in the data") from None
    except ValueError as exc:
        raise ValueError(_message(exc)) from None


# --- budgets --------------------------------------------------------------------------

_charged: contextvars.ContextVar[int | None] = contextvars.ContextVar("conduit_expressions_for", default=None)
_spent: dict[int, tuple[float, float]] = {}  # organization id -> (window started, seconds spent in it)
_spent_lock = threading.Lock()
_sandbox = None


@contextlib.contextmanager
def charged_to(organization_id: int) -> Iterator[None]:
    """The loops evaluated inside spend this organization's budget."""
    token = _charged.set(organization_id)
    try:
        yield
    finally:
        _charged.reset(token)


def _evaluate_limited(source: str, scope: dict[str, Any]) -> Any:
    from django.conf import settings

    from journeys.expression_sandbox import OverBudget, Sandbox

    global _sandbox
    organization_id, window_s = _charged.get(), settings.CONDUIT_EXPRESSION_WINDOW_S
    if organization_id is not None:
        with _spent_lock:
            started, spent = _spent.get(organization_id, (0.0, 0.0))
            if time.monotonic() - started >= window_s:
                started, spent = _spent[organization_id] = (time.monotonic(), 0.0)
        if spent >= settings.CONDUIT_EXPRESSION_BUDGET_S:
            raise EvaluationError(
                f"over budget: this organization's expressions with loops used their "
                f"{settings.CONDUIT_EXPRESSION_BUDGET_S:g} s per {window_s:g} s; try again later or simplify them"
            )
    if _sandbox is None:
        _sandbox = Sandbox()
    try:
        return _sandbox.evaluate(
            source, scope, timeout_s=settings.CONDUIT_EXPRESSION_TIME_LIMIT_MS / 1000,
            memory_mb=settings.CONDUIT_EXPRESSION_MEMORY_MB,
        )  # fmt: skip
    except OverBudget as exc:
        raise EvaluationError(f"over budget: the expression {exc}") from None
    except ValueError as exc:
        raise EvaluationError(str(exc)) from None
    finally:
        if organization_id is not None:
            with _spent_lock:
                started, spent = _spent.get(organization_id, (time.monotonic(), 0.0))
                _spent[organization_id] = (started, spent + _sandbox.spent_s)


def _parse_error(exc: Exception) -> ExpressionError:
    text = str(exc)
    found = _POSITION.search(text)
    if found:
        detail = found.group(3).split("\n")[0]
        return ExpressionError(
            _("does not parse: %(detail)s") % {"detail": detail}, int(found.group(1)), int(found.group(2))
        )
    return ExpressionError(_("does not parse"))


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Expression:
    """Compile once (cached by source); ExpressionError with the position of the problem."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError(_("an expression is required"))
    if len(source) > MAX_LENGTH:
        raise ExpressionError(_("is longer than %(max)s characters") % {"max": MAX_LENGTH})
    try:
        program = cel.compile(source)
    except (ValueError, RuntimeError) as exc:
        raise _parse_error(exc) from None
    without_strings = _STRINGS.sub('""', source)
    loop_names = _loop_check(without_strings)
    unknown = sorted(set(program.variables()) - set(ROOTS) - loop_names)
    if unknown:
        # `web` where "web" was meant: say how text is written, not only what the names are.
        quoted = json.dumps(unknown[0])
        raise ExpressionError(
            _("unknown name %(name)s; expressions see %(roots)s. Text goes in quotes: %(quoted)s")
            % {"name": repr(unknown[0]), "roots": ", ".join(ROOTS), "quoted": quoted}
        )
    references = frozenset(_STEP_REFERENCE.findall(without_strings))
    loops = bool(loop_names) or _MAY_LOOP.search(source) is not None
    return Expression(source=source, program=program, step_references=references, loops=loops)


def _loop_check(text: str) -> set[str]:
    """The names loops bind; ExpressionError past the budget at save (MAX_LOOPS, MAX_NESTED_LOOPS)."""
    loops = list(_LOOP.finditer(text))
    if len(loops) > MAX_LOOPS:
        raise ExpressionError(
            _("has %(count)s loops (map, filter, all, exists); at most %(max)s")
            % {"count": len(loops), "max": MAX_LOOPS}
        )
    names = set()
    for loop in loops:
        name = loop.group(1)
        if name in ROOTS:
            raise ExpressionError(
                _("%(loop)s: a loop's variable cannot be named %(name)s; choose another")
                % {"loop": loop.group(0).strip(), "name": name}
            )
        if name:
            names.add(name)
    opens = {loop.start() + loop.group(0).index("(") for loop in loops}  # where each loop's "(" stands
    stack: list[bool] = []
    for at, char in enumerate(text):
        if char == "(":
            stack.append(at in opens)
            if sum(stack) > MAX_NESTED_LOOPS:
                raise ExpressionError(
                    _("nests loops %(depth)s deep; at most %(max)s") % {"depth": sum(stack), "max": MAX_NESTED_LOOPS}
                )
        elif char == ")" and stack:
            stack.pop()
    return names


def evaluate(source: str, scope: dict[str, Any]) -> Any:
    """Evaluate a journey expression in a scope of profile, event, steps and now; EvaluationError on any failure."""
    try:
        return compile_expression(source).evaluate(**scope)
    except ExpressionError as exc:
        raise EvaluationError(str(exc)) from None


def fields_read(source: str) -> set[tuple[str, str]]:
    """(root, first field) of each profile or event field an expression reads, text in quotes left
    out: {("profile", "email"), ("event.data", "total")}."""
    without_strings = _STRINGS.sub('""', source)
    return {(re.sub(r"\s", "", root), name) for root, name in _FIELD_READ.findall(without_strings)}
