"""API fuzzing with schemathesis over every operation of /api/v1/schema/, as acme's admin.

Every generated request must get no 5xx and a response that matches the schema. The number of
examples per operation is bounded (FUZZ_EXAMPLES, default 15) so that CI stays short.
"""

import os

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from tests.actions.helpers import make_action

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, status_code_conformance]


@pytest.fixture
def api_schema(db):
    # As Django's test client does: a request must not close the test's database connection.
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/v1/schema/", application)
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def admin_token(world) -> str:
    # Some rows to find: an action (on a private address, so that a test call is refused at once).
    make_action(world.acme, url="https://10.0.0.1/v1/{{account}}")
    return Token.objects.get_or_create(user=world.user("admin"))[0].key


@pytest.mark.fuzz
@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)  # fmt: skip
def test_no_server_error_and_every_response_matches_the_schema(case, admin_token, world):
    if "org_slug" in (case.path_parameters or {}):
        case.path_parameters["org_slug"] = "acme"
    case.call_and_validate(headers={"Authorization": f"Token {admin_token}"}, checks=CHECKS)
