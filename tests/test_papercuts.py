"""Papercuts a new user met (issue 18), each kept fixed."""

import importlib
import io
from pathlib import Path
from types import SimpleNamespace

from django.conf import settings
from django.core.management import call_command
from django.db import connection


def test_migrate_alone_makes_the_cache_table(db, settings):
    # The embedded default caches in the database: without this table a login answered 500.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache",
                                   "LOCATION": "conduit_cache_made_by_migrate"}}  # fmt: skip
    migration = importlib.import_module("tenants.migrations.0004_cache_table")
    migration.create_cache_table(None, SimpleNamespace(connection=connection))
    assert "conduit_cache_made_by_migrate" in connection.introspection.table_names()


def test_a_test_that_seeds_the_demo_leaves_the_demo_key_of_make_run_alone(db):
    real = Path(settings.BASE_DIR) / "var" / "demo-api-key"
    before = real.read_bytes() if real.exists() else None
    call_command("seed_demo", stdout=io.StringIO())
    assert Path(settings.CONDUIT_DEMO_KEY_FILE).exists() and Path(settings.CONDUIT_DEMO_KEY_FILE) != real
    assert (real.read_bytes() if real.exists() else None) == before
