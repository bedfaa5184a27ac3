"""Standard Webhooks signatures (https://www.standardwebhooks.com/): HMAC-SHA256 over id.timestamp.body."""

import base64
import hashlib
import hmac
import time
from typing import Any


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signature_headers(secrets: list[str], message_id: str, timestamp: int, body: bytes | None) -> list[tuple[str, str]]:
    """The three headers; during a rotation both secrets sign, space-separated."""
    active = [s for s in secrets if s]
    if not active:
        return []
    signatures = " ".join(sign(s, message_id, timestamp, body or b"") for s in active)
    return [
        ("webhook-id", message_id),
        ("webhook-timestamp", str(timestamp)),
        ("webhook-signature", signatures),
    ]


def delivery_headers(action: Any, key: str, body: bytes | None) -> list[tuple[str, str]]:
    """What every call of an action carries: its Idempotency-Key and, with a signing secret, the signature."""
    secrets = [action.signing_secret, action.previous_signing_secret]
    return [("Idempotency-Key", key), *signature_headers(secrets, key, int(time.time()), body)]
