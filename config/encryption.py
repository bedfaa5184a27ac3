"""Encrypted model fields: MultiFernet over FIELD_ENCRYPTION_KEYS (first key encrypts).

Rotation: put a new key first, keep the old ones after it, run
`manage.py rotate_encryption_keys`, then drop the old keys.
"""

import json
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


def decrypt_text(token: str, *, label: str = "a secret") -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            f"Cannot decrypt {label}: none of FIELD_ENCRYPTION_KEYS opens it. Was the key that "
            "encrypted it removed before `manage.py rotate_encryption_keys` ran?"
        ) from None


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
        return json.loads(value)

    def get_prep_value(self, value: dict | None) -> str:
        if not value:
            return ""
        return encrypt_text(json.dumps(value, sort_keys=True))


def encrypted_fields(model: type[models.Model]) -> list[str]:
    return [f.name for f in model._meta.get_fields() if isinstance(f, EncryptedTextField | EncryptedJSONField)]
