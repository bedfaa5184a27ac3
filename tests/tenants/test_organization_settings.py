"""An organization's admins set its name and time-zone settings through the API (send windows read them)."""

import pytest

from tests.conftest import token_client

ORG = "/api/v1/orgs/acme/"


def test_an_admin_sets_the_default_time_zone_and_the_attribute_profiles_carry_it_in(world):
    client = token_client(world.user("admin"))
    response = client.patch(ORG, {"default_time_zone": "Europe/Paris", "time_zone_attribute": "tz"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["default_time_zone"] == "Europe/Paris"
    world.acme.refresh_from_db()
    assert (world.acme.default_time_zone, world.acme.time_zone_attribute) == ("Europe/Paris", "tz")
    assert client.get(ORG).json()["time_zone_attribute"] == "tz"


@pytest.mark.parametrize("role", ["technical", "marketer", "viewer"])
def test_only_admins_change_the_settings(world, role):
    response = token_client(world.user(role)).patch(ORG, {"name": "Renamed"}, format="json")
    assert response.status_code == 403
    world.acme.refresh_from_db()
    assert world.acme.name == "Acme Inc"


def test_another_organizations_admin_gets_404(world):
    response = token_client(world.globex_admin.user).patch(ORG, {"name": "Taken"}, format="json")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"default_time_zone": "Mars/Olympus"}, "default_time_zone"),
        ({"default_time_zone": "../../etc/passwd"}, "default_time_zone"),
        ({"default_time_zone": 7}, "default_time_zone"),
        ({"time_zone_attribute": "x" * 65}, "time_zone_attribute"),
        ({"name": ""}, "name"),
        ({"allow_http": True}, "allow_http"),  # platform staff's, in the admin
        ({"slug": "taken"}, "slug"),
    ],
)
def test_a_bad_setting_is_a_400_naming_it_and_nothing_changes(world, body, field):
    response = token_client(world.user("admin")).patch(ORG, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    world.acme.refresh_from_db()
    assert (world.acme.slug, world.acme.default_time_zone, world.acme.allow_http) == ("acme", "UTC", False)
