"""Encrypted model fields: MultiFernet over FIELD_ENCRYPTION_KEYS (first key encrypts).

Rotation: put a new key first, keep the old ones after it, run
`manage.py rotate_encryption_keys`, then drop the old keys.

Serialized (`dumpdata`, `manage.py export_organization`), a secret is a Fernet token under the
first key; only `secrets_in_clear()` (`export_organization --with-secrets`) writes it in clear.
A dump is read back by the deserializers of config/serialization, which open those tokens.
"""

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


class DecryptionError(RuntimeError):
    """A stored secret that none of the configured keys opens. Never silently ignored."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is not set: give one or more Fernet keys, comma-separated "
            "(generate one with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`)."
        )
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS holds an invalid Fernet key: {exc}") from None


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_text(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def fingerprint(text: str) -> str:
    """A keyed digest of `text` (HMAC-SHA256 under the first key) for cache keys: it tells whether a secret
    changed, and unlike a bare hash cannot be used to guess a weak secret by whoever reads the cache."""
    first_key = settings.FIELD_ENCRYPTION_KEYS[0] if settings.FIELD_ENCRYPTION_KEYS else ""
    return hmac.new(first_key.encode(), text.encode(), hashlib.sha256).hexdigest()


def decrypt_text(token: str, *, label: str = "a secret") -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            f"Cannot decrypt {label}: none of FIELD_ENCRYPTION_KEYS opens it. Was the key that "
            "encrypted it removed before `manage.py rotate_encryption_keys` ran?"
        ) from None


# Set while a dump is read (config/serialization) or written with its secrets in clear (export_organization).
_loading_dump: ContextVar[bool] = ContextVar("loading_dump", default=False)
_in_clear: ContextVar[bool] = ContextVar("secrets_in_clear", default=False)


@contextlib.contextmanager
def loading_dump() -> Iterator[None]:
    """While a dump is deserialized, an encrypted field's value is a Fernet token (or, from an export with
    secrets, clear text): only here does the field open a token it is given, never from a form or the API."""
    token = _loading_dump.set(True)
    try:
        yield
    finally:
        _loading_dump.reset(token)


@contextlib.contextmanager
def secrets_in_clear() -> Iterator[None]:
    """Serialize encrypted fields in clear (an export asked for with its secrets), not as ciphertext."""
    token = _in_clear.set(True)
    try:
        yield
    finally:
        _in_clear.reset(token)


def is_fernet_token(value: str) -> bool:
    """Whether `value` has a Fernet token's shape: version 0x80, timestamp, IV, whole blocks and an HMAC."""
    try:
        raw = base64.b64decode(value.encode(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) >= 73 and (len(raw) - 57) % 16 == 0 and raw[0] == 0x80


def _serialized(text: str) -> str:
    return text if _in_clear.get() else encrypt_text(text)


def _from_dump(value: str, label: str) -> str:
    """A dump holds a token (it must open: the same keys) or the clear text of an export with secrets."""
    return decrypt_text(value, label=label) if is_fernet_token(value) else value


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token; empty stays empty so "no secret" needs no key."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str:
        if not value:
            return ""
        return decrypt_text(value, label=f"{self.model.__name__}.{self.name}")

    def get_prep_value(self, value: str | None) -> str:
        if not value:
            return ""
        return encrypt_text(str(value))

    def to_python(self, value: Any) -> str:
        value = super().to_python(value)
        if value and _loading_dump.get():
            return _from_dump(value, f"{self.model.__name__}.{self.name}")
        return value

    def value_to_string(self, obj: models.Model) -> str:
        value = self.value_from_object(obj)
        return _serialized(str(value)) if value else ""


class EncryptedJSONField(models.TextField):
    """A JSON object stored as one Fernet token."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> dict:
        if not value:
            return {}
        return json.loads(decrypt_text(value, label=f"{self.model.__name__}.{self.name}"))

    def to_python(self, value: Any) -> dict:
        if isinstance(value, dict):
            return value
        if not value:
            return {}
        if _loading_dump.get():
            value = _from_dump(value, f"{self.model.__name__}.{self.name}")
        return json.loads(value)

    def get_prep_value(self, value: dict | None) -> str:
        if not value:
            return ""
        return encrypt_text(json.dumps(value, sort_keys=True))

    def value_to_string(self, obj: models.Model) -> str:
        value = self.value_from_object(obj)
        return _serialized(json.dumps(value, sort_keys=True)) if value else ""


def encrypted_fields(model: type[models.Model]) -> list[str]:
    return [f.name for f in model._meta.get_fields() if isinstance(f, EncryptedTextField | EncryptedJSONField)]
