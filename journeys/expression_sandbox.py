"""Expressions that loop (map, filter, all, exists, exists_one) run in a child process, with limits.

CEL's interpreter (Rust) holds the GIL and cannot be interrupted: a loop over a large list, or
loops nested in each other, can take seconds and hundreds of MB. Only a process can be stopped,
so those expressions are evaluated in one child per worker process, which gets a memory limit
(RLIMIT_AS) at start and is killed when an evaluation outlasts its time. The parent waits on a
pipe; a killed child is replaced at the next evaluation. Expressions without a loop cost time in
proportion to their length and data, and stay in process (13 µs, MEASURED.md).

The child imports nothing but `cel` and `journeys.expressions` (no Django): it starts in about
0.1 s and holds no secret, database connection or setting.
"""

import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_HEADER = struct.Struct("!I")
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class OverBudget(RuntimeError):
    """The evaluation took longer, or more memory, than an expression may."""


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes | None:
    """`size` bytes from `fd`, or None when the deadline passes or the other end is gone."""
    chunks, left = [], size
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                return None
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write(stream: Any, payload: bytes) -> None:
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


class _Child:
    def __init__(self, memory_mb: int) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CONDUIT_SANDBOX_MEMORY_MB": str(memory_mb)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "journeys.expression_sandbox"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT, env=env,
        )  # fmt: skip

    def ask(self, payload: bytes, timeout_s: float) -> bytes | None:
        try:
            _write(self.process.stdin, payload)
        except (BrokenPipeError, OSError):
            return None
        deadline = time.monotonic() + timeout_s
        fd = self.process.stdout.fileno()
        header = _read_exactly(fd, _HEADER.size, deadline)
        if header is None:
            return None
        (size,) = _HEADER.unpack(header)
        return _read_exactly(fd, size, deadline) if size <= MAX_MESSAGE_BYTES else None

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


class Sandbox:
    """One child process, shared by the threads of a worker process (one evaluation at a time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._ready = False
        self._pid = os.getpid()
        self.spent_s = 0.0  # the last evaluation's time, without the child's start

    def evaluate(self, source: str, scope: dict[str, Any], *, timeout_s: float, memory_mb: int) -> Any:
        """The expression's value; OverBudget past the time or memory; ValueError with CEL's message."""
        payload = pickle.dumps((source, scope))
        with self._lock:
            if self._child is None or self._pid != os.getpid():  # a forked worker makes its own child
                self._child, self._pid, self._ready = _Child(memory_mb), os.getpid(), False
            if not self._ready:  # the child's start is not the expression's time: wait for it
                self._ready = self._child.ask(pickle.dumps(("true", {})), 10.0) is not None
                if not self._ready:
                    self._child.stop()
                    self._child = None
                    raise OverBudget("the expression sandbox could not start")
            started = time.monotonic()
            answer = self._child.ask(payload, timeout_s)
            self.spent_s = time.monotonic() - started
            if answer is None:
                self._child.stop()
                self._child, self._ready = _Child(memory_mb), False  # starts now, ready by the next evaluation
                if self.spent_s >= timeout_s * 0.95:
                    raise OverBudget(f"took longer than {timeout_s * 1000:.0f} ms")
                raise OverBudget(f"needed more than {memory_mb} MB")
        kind, value = pickle.loads(answer)  # noqa: S301  (our own child pickled it: values, never raw data)
        if kind == "error":
            raise ValueError(value)
        return value


def _serve() -> None:
    """The child: evaluate what the parent sends, one at a time, under the memory limit."""
    import resource

    limit = int(os.environ.get("CONDUIT_SANDBOX_MEMORY_MB", "256")) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from journeys.expressions import run_program

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        header = _read_exactly(stdin.fileno(), _HEADER.size, None)
        if header is None:
            return
        (size,) = _HEADER.unpack(header)
        source, scope = pickle.loads(_read_exactly(stdin.fileno(), size, None) or b"")  # noqa: S301  (the parent)
        try:
            answer = ("ok", run_program(source, scope))
        except MemoryError:
            return  # the parent reports the memory limit
        except Exception as exc:  # CEL's own errors: a message for the run, as in process
            answer = ("error", str(exc).split("\n")[0])
        try:
            _write(stdout, pickle.dumps(answer))
        except (TypeError, pickle.PicklingError):
            _write(stdout, pickle.dumps(("error", "the expression gave a value Conduit cannot use")))


if __name__ == "__main__":
    _serve()
