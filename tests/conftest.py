from dataclasses import dataclass

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tenants.models import Membership, Organization
from tenants.roles import Role
from tests.factories import TEST_ENCRYPTION_KEY, MembershipFactory, OrganizationFactory, UserFactory

pytest_plugins = ["tests.workers", "tests.redis_server"]

ROLES = [Role.ADMIN, Role.TECHNICAL, Role.MARKETER, Role.VIEWER]


@dataclass
class World:
    """Two organizations: a user of every role in acme, an admin in globex."""

    acme: Organization
    globex: Organization
    members: dict[str, Membership]  # role -> acme membership
    globex_admin: Membership

    def user(self, role: str):
        return self.members[role].user


@pytest.fixture
def world(db) -> World:
    acme = OrganizationFactory(slug="acme", name="Acme Inc")
    globex = OrganizationFactory(slug="globex", name="Globex Corporation")
    members = {
        role: MembershipFactory(organization=acme, user=UserFactory(username=f"acme_{role}"), role=role)
        for role in ROLES
    }
    globex_admin = MembershipFactory(organization=globex, user=UserFactory(username="globex_admin"), role=Role.ADMIN)
    return World(acme=acme, globex=globex, members=members, globex_admin=globex_admin)


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def key_client(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture(autouse=True)
def _fresh_cache(request):
    """Throttle counters and tokens live in the (database) cache; each test starts with none."""
    uses_db = {"db", "transactional_db", "django_db_setup"} & set(request.fixturenames)
    if not uses_db and not request.node.get_closest_marker("django_db"):
        yield
        return
    from django.core.cache import cache

    # Autouse fixtures run first: open the database the test asked for before using it.
    request.getfixturevalue("transactional_db" if "transactional_db" in request.fixturenames else "db")
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _demo_key_in_a_temporary_folder(settings, tmp_path):
    """seed_demo keeps the demo API key in a file: a test's run must not replace the one `make run` printed."""
    settings.CONDUIT_DEMO_KEY_FILE = tmp_path / "demo-api-key"


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    """Production's manifest storage needs `collectstatic`; tests render pages without it."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 at production strength costs ~0.2 s per user; tests need no strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _encryption_keys(settings):
    settings.FIELD_ENCRYPTION_KEYS = [TEST_ENCRYPTION_KEY]


@pytest.fixture(autouse=True)
def _calls_in_this_thread(settings):
    """Calls sent from the test process run one at a time in its own thread: a call thread would use a
    database connection of its own, outside the test's transaction. Real workers (tests/workers.py)
    keep their calls in flight together, and the tests of that use them."""
    settings.CONDUIT_MAX_IN_FLIGHT = 1
    from actions.runtime import dispatch, inflight

    dispatch._backlog.clear()  # a count kept for a second by another test's action of the same id
    inflight._latency_s.clear()


@pytest.fixture
def allow_loopback(settings):
    """Outbound calls to the loopback test servers are refused unless listed (SPEC section 2)."""
    settings.CONDUIT_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8", "::1/128"]
