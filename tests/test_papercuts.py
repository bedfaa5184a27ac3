"""Papercuts a new user met (issue 18), each kept fixed."""

import io
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.db import connection


def test_migrate_alone_makes_the_cache_table(db):
    # The test database is made by the migrations; without this table a login answered 500.
    assert "conduit_cache" in connection.introspection.table_names()


def test_a_test_that_seeds_the_demo_leaves_the_demo_key_of_make_run_alone(db):
    real = Path(settings.BASE_DIR) / "var" / "demo-api-key"
    before = real.read_bytes() if real.exists() else None
    call_command("seed_demo", stdout=io.StringIO())
    assert Path(settings.CONDUIT_DEMO_KEY_FILE).exists() and Path(settings.CONDUIT_DEMO_KEY_FILE) != real
    assert (real.read_bytes() if real.exists() else None) == before
