"""What one call gave, the same for an HTTP request and an email."""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class CallResult:
    outcome: str  # SPEC section 3: succeeded, http_<code>, timedout, rate_limited, circuit_open, refused, error
    request: dict  # the rendered request as shown to people: secrets masked
    status_code: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    response_json: Any = None
    truncated: bool = False
    latency_ms: int = 0
    error: str = ""
    auth_failed: bool = False  # no credentials could be had: says nothing about the host's health
    next_request: dict | None = None  # what a retry sends instead (an email, to the recipients refused for now)
