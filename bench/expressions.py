"""CEL libraries compared on Conduit's expressions: the same answers, and time per evaluation.

    .venv/bin/python bench/expressions.py

common-expression-language (`cel`, Rust) against cel-python (`celpy`, pure Python), each
compiling once and evaluating many times, in the same run. Prints each library's answers
and the speed ratio; the journeys engine uses the faster one where the answers agree.
"""

import time
from datetime import UTC, datetime

import cel
import celpy

EXPRESSIONS = [
    'event.data.total > 100.0 && profile.country == "FR"',
    '"Bonjour " + profile.first_name',
    'steps.sms.status == "http_404"',
    "size(event.data.items) >= 2 || profile.vip",
    'steps.sms.status == "succeeded" ? "ok" : "retry"',
]
CONTEXT = {
    "profile": {"first_name": "Ada", "country": "FR", "vip": False},
    "event": {"data": {"total": 120.5, "items": [1, 2, 3]}},
    "steps": {"sms": {"status": "http_404"}},
    "now": datetime(2026, 11, 29, tzinfo=UTC).isoformat(),
}
N = 5_000


def per_evaluation(run) -> float:
    started = time.perf_counter()
    for _ in range(N):
        run()
    return (time.perf_counter() - started) / N


def main() -> None:
    environment = celpy.Environment()
    activation = celpy.json_to_cel(CONTEXT)
    total_rust = total_python = 0.0
    for source in EXPRESSIONS:
        rust = cel.compile(source)
        python = environment.program(environment.compile(source))
        answers = (rust.execute(CONTEXT), python.evaluate(activation))
        agree = str(answers[0]).lower() == str(answers[1]).lower()
        rust_s = per_evaluation(lambda rust=rust: rust.execute(CONTEXT))
        python_s = per_evaluation(lambda python=python: python.evaluate(activation)) if N else 0
        total_rust, total_python = total_rust + rust_s, total_python + python_s
        print(f"{source[:52]:<52} {answers[0]!s:<8} {'same' if agree else 'DIFFERENT'}  "
              f"cel {rust_s * 1e6:6.1f} µs  celpy {python_s * 1e6:7.1f} µs")  # fmt: skip
    print(f"ratio celpy/cel (time per evaluation): {total_python / total_rust:.1f}")


if __name__ == "__main__":
    main()
