import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from actions.models import Action
from config.encryption import DecryptionError
from tests.actions.helpers import make_action


def _raw(action):
    with connection.cursor() as cursor:
        cursor.execute("SELECT auth_secrets FROM actions_action WHERE id = %s", [action.pk])
        return cursor.fetchone()[0]


def test_rotation_re_encrypts_with_the_new_key_and_old_key_can_go(world, settings):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    action = make_action(world.acme)
    before = _raw(action)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_encryption_keys")
    after = _raw(action)
    assert after != before
    assert Fernet(new_key.encode()).decrypt(after.encode())
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    assert Action.objects.get(pk=action.pk).auth_secrets == {"token": "tok-SECRET-123456"}


def test_a_value_no_key_opens_is_a_loud_error(world, settings):
    action = make_action(world.acme)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(DecryptionError, match="Cannot decrypt Action.auth_secrets.*rotate_encryption_keys"):
        Action.objects.get(pk=action.pk)
