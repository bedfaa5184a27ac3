"""Cross-cutting behaviour: tokens, login throttling, error format, deploy checks, Celery config."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.test import RequestFactory
from rest_framework.test import APIClient

from config.common.errors import handler500
from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parent.parent


def test_token_endpoint_exchanges_password_for_a_working_token(world):
    client = APIClient()
    response = client.post("/api/v1/auth/token/", {"username": "acme_admin", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get("/api/v1/orgs/acme/members/").status_code == 200


def test_wrong_password_gets_400_in_the_error_format(world):
    response = APIClient().post("/api/v1/auth/token/", {"username": "acme_admin", "password": "nope"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "Invalid input."
    assert body["errors"]["non_field_errors"] == ["Unable to log in with provided credentials."]


def test_token_endpoint_is_throttled(world):
    client = APIClient()
    statuses = [
        client.post("/api/v1/auth/token/", {"username": f"u{i}", "password": "x"}, format="json").status_code
        for i in range(12)
    ]
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429
    assert "throttled" in client.post("/api/v1/auth/token/", {}, format="json").json()["detail"]


def test_admin_login_locks_out_after_five_failures(world, client):
    for _ in range(4):
        response = client.post("/admin/login/", {"username": "acme_admin", "password": "wrong"})
        assert response.status_code == 200  # the form again, with an error
    assert client.post("/admin/login/", {"username": "acme_admin", "password": "wrong"}).status_code == 429
    # Locked: even the right password is refused for now.
    response = client.post("/admin/login/", {"username": "acme_admin", "password": PASSWORD})
    assert response.status_code == 429
    assert b"locked" in response.content.lower()


def test_member_without_staff_flag_can_log_into_the_admin(world, client):
    response = client.post("/admin/login/?next=/admin/", {"username": "acme_viewer", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_user_without_membership_cannot_log_into_the_admin(db, client):
    from tests.factories import UserFactory

    UserFactory(username="drifter")
    response = client.post("/admin/login/", {"username": "drifter", "password": PASSWORD})
    assert response.status_code == 200
    assert b"not a member of any active organization" in response.content


def test_unknown_api_url_answers_json_404(db, client):
    response = client.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "errors": {}}


@pytest.mark.parametrize("host", ["eYi`c>[;Y2", "evil.example", "local host"])
def test_a_host_header_the_server_does_not_serve_answers_json_400_on_the_api(db, client, host):
    # Found by the API fuzzing: a hypothesis-made Host header got Django's HTML page.
    response = client.get("/api/v1/orgs/acme/actions/1/", HTTP_HOST=host)
    assert response.status_code == 400
    assert response.json() == {"detail": "The Host header names a host this server does not answer for.", "errors": {}}
    page = client.get("/admin/", HTTP_HOST=host)
    assert page.status_code == 400 and b"Bad Request" in page.content


def test_server_error_on_the_api_answers_json_500():
    response = handler500(RequestFactory().get("/api/v1/orgs/acme/"))
    assert response.status_code == 500
    assert response.content == b'{"detail": "Internal server error.", "errors": {}}'


def test_schema_and_docs_answer_without_login(db, client):
    schema = client.get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/orgs/{org_slug}/members/" in schema.content
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    # Served from our static files, not a CDN: no script or stylesheet from another host.
    assert not re.search(rb'(src|href)=["\']https?://', docs.content)


def test_debug_is_off_unless_asked_for():
    assert settings.DEBUG is False


PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "k" * 20 + "9f8a7sd6f5as4d3f2as1df0as9d8f7as6df5as4df",
    "ALLOWED_HOSTS": "conduit.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_PRELOAD": "true",
    "FIELD_ENCRYPTION_KEYS": "1m5t0yN0o7Vr2rdJZ7bLX5d4j2uL5q3k6yD0kqjH3mE=",
}


def _check_deploy(extra: dict) -> subprocess.CompletedProcess:
    # Production as deployed: none of the test run's own variables (the browser tests' async switch).
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV and k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env |= extra
    env["DATABASE_URL"] = "sqlite:///:memory:"
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_the_production_variables_of_the_readme():
    result = _check_deploy(PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    readme = (ROOT / "README.md").read_text()
    for name in PRODUCTION_ENV:
        assert f"`{name}`" in readme


def test_check_deploy_fails_with_development_defaults():
    result = _check_deploy({"DEBUG": "false", "FIELD_ENCRYPTION_KEYS": ""})
    assert result.returncode != 0
    assert "security.W009" in result.stderr + result.stdout  # the insecure development key
    assert "conduit.E001" in result.stderr + result.stdout  # no encryption keys


def test_celery_runs_with_late_ack_prefetch_one_and_reject_on_worker_lost():
    from config.celery import app

    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_reject_on_worker_lost is True


def test_registered_sweepers_reach_the_beat_schedule():
    from config.celery import app
    from config.common.periodic import PERIODIC_TASKS, register_periodic

    register_periodic("test-sweeper", 5, "tests.example_sweep")
    try:
        assert app.conf.beat_schedule["test-sweeper"] == {
            "task": "tests.example_sweep",
            "schedule": 5,
        }
    finally:
        PERIODIC_TASKS.pop("test-sweeper")


@pytest.mark.parametrize("sql", ["PRAGMA journal_mode", "PRAGMA busy_timeout"])
def test_sqlite_is_set_for_concurrent_writers(db, sql):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite settings only")
    with connection.cursor() as cursor:
        cursor.execute(sql)
        value = cursor.fetchone()[0]
    # In-memory test databases cannot use WAL; the file database of `make run` does.
    expected = {"PRAGMA journal_mode": ("wal", "memory"), "PRAGMA busy_timeout": (30000,)}[sql]
    assert value in expected


def test_fuzzing_findings_stay_fixed(world):
    """OPTIONS answered 500 where a view has no serializer; a 65-bit id in a filter overflowed the database."""
    from tests.conftest import token_client

    client = token_client(world.user("admin"))
    assert client.options("/api/v1/orgs/acme/events/").status_code == 405
    response = client.get("/api/v1/orgs/acme/invocations/", {"action": 2**65})
    assert response.status_code == 400 and "action" in response.json()["errors"]
    assert client.get("/api/v1/orgs/acme/runs/", {"journey": -(10**19)}).status_code == 400


def test_every_operation_documents_its_error_answers():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"400", "401", "403", "404"} <= set(operation["responses"]), (method, path)


def test_nul_characters_and_far_timezones_get_a_400_not_a_500(world):
    """PostgreSQL stores neither \\u0000 nor offsets past 15:59; fuzzing sent both."""
    from tests.conftest import token_client

    client = token_client(world.user("admin"))
    response = client.put("/api/v1/orgs/acme/profiles/p1/", '{"attributes": {"a": "x\\u0000y"}}',
                          content_type="application/json")  # fmt: skip
    assert response.status_code == 400 and "NUL" in response.json()["detail"]
    unescaped = client.put("/api/v1/orgs/acme/profiles/p2/", {"attributes": {"a": "\\\\u0000"}}, format="json")
    assert unescaped.status_code == 201  # a backslash and "u0000" is ordinary text
    response = client.get("/api/v1/orgs/acme/invocations/", {"since": "5025-12-07T04:37:42+23:35"})
    assert response.status_code == 200
    assert client.get("/api/v1/orgs/acme/actions/", {"limit": 10**20, "offset": 2**70}).status_code == 200


def test_the_compose_file_sets_only_variables_the_settings_read_and_the_readme_documents():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parent.parent
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    settings_text = (root / "config" / "settings.py").read_text()
    readme = (root / "README.md").read_text()
    for service in ("web", "worker", "beat", "migrate"):
        for name in compose["services"][service]["environment"]:
            assert f'"{name}"' in settings_text, f"{name} is not read by the settings"
            assert f"`{name}`" in readme, f"{name} is not in the README"
    assert "--beat" not in str(compose["services"]["worker"]["command"])  # one beat, its own service


def test_a_worker_keeps_its_database_connection_between_tasks_until_it_is_too_old(transactional_db):
    """Celery's Django fixup would close it around every task (a connection per wake-up message); tasks
    keep it as Django keeps one between requests, and let go of it once older than CONN_MAX_AGE."""
    from celery import signals
    from celery.fixups.django import DjangoWorkerFixup
    from django.db import connection

    from actions.tasks import send_invocation as task  # as a worker runs it: not eager
    from config.celery import app

    connection.ensure_connection()
    connection.close_at = time.monotonic() + 60  # CONN_MAX_AGE=60, the default outside SQLite
    opened = connection.connection
    for signal in (signals.task_prerun, signals.task_postrun):
        DjangoWorkerFixup(app).close_database()  # what the fixup does on each of these signals
        signal.send(sender=task, task_id="t", task=task)
    assert connection.connection is opened

    connection.close_at = time.monotonic() - 1  # older than CONN_MAX_AGE
    signals.task_postrun.send(sender=task, task_id="t", task=task)
    assert connection.connection is None
