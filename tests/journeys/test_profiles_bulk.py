"""Profiles in bulk: the API (POST .../profiles/bulk/) and the admin's CSV import."""

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from journeys.api.events import MAX_EVENT_BYTES
from journeys.audience.profiles_bulk import MAX_PROFILE_BYTES
from journeys.models import Profile
from tenants.services import api_key_create
from tests.conftest import key_client, token_client

BULK = "/api/v1/orgs/acme/profiles/bulk/"


@pytest.fixture
def loader(world):
    _, raw = api_key_create(organization=world.acme, name="crm", scopes=["profiles:write"])
    return key_client(raw)


def _profiles(n, start=0, **attributes):
    return [{"external_id": f"cust-{i}", "attributes": {"n": i, **attributes}} for i in range(start, start + n)]


def test_new_profiles_are_created_and_known_ones_merged(loader, world):
    Profile.objects.create(organization=world.acme, external_id="cust-1", attributes={"n": 0, "vip": True})
    response = loader.post(BULK, {"profiles": _profiles(3, country="FR")}, format="json")
    assert response.status_code == 200 and response.json() == {"created": 2, "updated": 1}
    assert Profile.objects.get(external_id="cust-1").attributes == {"n": 1, "vip": True, "country": "FR"}
    assert Profile.objects.get(external_id="cust-2").organization == world.acme


def test_the_same_request_twice_creates_nothing_the_second_time(loader):
    body = {"profiles": _profiles(50)}
    assert loader.post(BULK, body, format="json").json() == {"created": 50, "updated": 0}
    assert loader.post(BULK, body, format="json").json() == {"created": 0, "updated": 50}
    assert Profile.objects.count() == 50


def test_the_same_id_twice_in_a_list_merges_in_order(loader):
    body = {"profiles": [{"external_id": "a", "attributes": {"x": 1, "y": 1}}, {"external_id": "a",
                                                                               "attributes": {"y": 2}}]}  # fmt: skip
    assert loader.post(BULK, body, format="json").json() == {"created": 1, "updated": 0}
    assert Profile.objects.get().attributes == {"x": 1, "y": 2}


def test_ten_thousand_profiles_take_a_few_queries(loader, world):
    Profile.objects.bulk_create([Profile(organization=world.acme, external_id=f"cust-{i}") for i in range(5000)])
    with CaptureQueriesContext(connection) as queries:
        response = loader.post(BULK, {"profiles": _profiles(10_000)}, format="json")
    assert response.json() == {"created": 5000, "updated": 5000}
    sql = [q["sql"] for q in queries.captured_queries]
    # Two reads of profiles, the inserts in batches (199 rows each on SQLite), one executemany of updates.
    assert len([q for q in sql if q.startswith('SELECT "journeys_profile"')]) == 2
    assert len([q for q in sql if 'UPDATE "journeys_profile"' in q]) == 1 and len(sql) < 50
    assert Profile.objects.filter(organization=world.acme).count() == 10_000


def test_a_bad_item_is_named_by_index_and_field_and_nothing_is_stored(loader):
    items = _profiles(5)
    items[3]["external_id"] = ""
    response = loader.post(BULK, {"profiles": items}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] and list(body["errors"]) == ["profiles[3].external_id"]
    assert not Profile.objects.exists()


def test_more_than_ten_thousand_profiles_are_refused(loader):
    response = loader.post(BULK, {"profiles": [{"external_id": "x"}] * 10_001}, format="json")
    assert response.status_code == 400 and "10,000" in response.json()["errors"]["profiles"][0]
    assert not Profile.objects.exists()


@pytest.mark.parametrize(
    ("item", "where"),
    [
        ({"external_id": "x", "attributes": ["a"]}, "profiles[1].attributes"),
        ({"external_id": "x", "attributes": "text"}, "profiles[1].attributes"),
        ({"external_id": 5, "attributes": {}}, None),  # a number is taken as text, as DRF does for events
        ({"external_id": ["x"]}, "profiles[1].external_id"),
        ({"external_id": None}, "profiles[1].external_id"),
        ({"external_id": "x" * 201}, "profiles[1].external_id"),
        ({"external_id": "x", "color": "red"}, "profiles[1].color"),
        ({"attributes": {}}, "profiles[1].external_id"),
        ("cust-9", "profiles[1]"),
        ({"external_id": "x", "attributes": {"blob": "x" * (MAX_EVENT_BYTES + 1)}}, "profiles[1]"),
    ],
)
def test_hostile_items_get_a_400_naming_them(loader, item, where):
    response = loader.post(BULK, {"profiles": [{"external_id": "ok"}, item]}, format="json")
    if where is None:
        assert response.status_code == 200
        return
    assert response.status_code == 400, response.json()
    assert where in response.json()["errors"], response.json()
    assert not Profile.objects.exists()


def test_hostile_bodies_get_a_400(loader):
    deep: dict = {}
    for _ in range(100):
        deep = {"a": deep}
    for body in [[], {"profiles": []}, {"profiles": "x"}, {"profiles": [], "more": 1}, {"profiles": {"a": 1}},
                 {"profiles": [{"external_id": "x", "attributes": deep}]},
                 {"profiles": [{"external_id": "x\u0000", "attributes": {}}]}]:  # fmt: skip
        response = loader.post(BULK, data=json.dumps(body), content_type="application/json")
        assert response.status_code == 400, body
        assert set(response.json()) == {"detail", "errors"}
    response = loader.post(BULK, data="{nope", content_type="application/json")
    assert response.status_code == 400
    assert not Profile.objects.exists()
    assert MAX_PROFILE_BYTES == MAX_EVENT_BYTES


def test_a_request_over_16_mib_is_refused_with_413(loader):
    body = {"profiles": [{"external_id": f"c{i}", "attributes": {"blob": "x" * 60_000}} for i in range(300)]}
    response = loader.post(BULK, body, format="json")
    assert response.status_code == 413 and "16 MiB" in response.json()["detail"]


def test_roles_and_keys(world):
    body = {"profiles": _profiles(1)}
    assert token_client(world.user("viewer")).post(BULK, body, format="json").status_code == 403
    assert token_client(world.user("marketer")).post(BULK, body, format="json").status_code == 403
    assert token_client(world.user("technical")).post(BULK, body, format="json").status_code == 200
    _, raw = api_key_create(organization=world.acme, name="reader", scopes=["read", "events:write"])
    assert key_client(raw).post(BULK, body, format="json").status_code == 403
    _, other = api_key_create(organization=world.globex, name="g", scopes=["profiles:write"])
    assert key_client(other).post(BULK, body, format="json").status_code == 404
    assert token_client(world.globex_admin.user).post(BULK, body, format="json").status_code == 404
    assert Profile.objects.filter(organization=world.globex).count() == 0


def test_the_profile_detail_still_answers_beside_bulk(loader, world):
    loader.post(BULK, {"profiles": _profiles(1)}, format="json")
    response = token_client(world.user("viewer")).get("/api/v1/orgs/acme/profiles/cust-0/")
    assert response.status_code == 200 and response.json()["attributes"] == {"n": 0}


# --- the admin's CSV import ---------------------------------------------------------------------------

CSV = "id;Email;Orders;VIP\ncust-1;ada@example.com;3;yes\ncust-2;bob@example.com;x;no\n;carl@example.com;1;no\n"


@pytest.fixture
def technical(world, client):
    client.force_login(world.user("technical"))
    return client


def _upload(client, text=CSV, name="people.csv"):
    response = client.post(reverse("admin:journeys_profile_import"), {"file": SimpleUploadedFile(name, text.encode())})
    assert response.status_code == 302, response.content.decode()[:2000]
    return response["Location"]


MAPPING = {"external_id": "0", "name_1": "email", "type_1": "text", "name_2": "orders", "type_2": "number",
           "name_3": "vip", "type_3": "boolean", "name_0": "id", "type_0": "text"}  # fmt: skip


def test_the_csv_is_previewed_and_bad_lines_listed_with_nothing_stored(technical):
    page = _upload(technical)
    preview = technical.get(page).content.decode()
    assert "ada@example.com" in preview and 'id="import-preview"' in preview and "3 rows" in preview
    response = technical.post(page, MAPPING)
    problems = re.findall(r"<li>(Line \d+: .*?)</li>", response.content.decode())
    assert problems == ["Line 3: orders: is not a number", "Line 4: external id: This field may not be blank."]
    assert not Profile.objects.exists()


def test_a_mapped_csv_imports_by_chunks_with_its_types(technical, world):
    Profile.objects.create(organization=world.acme, external_id="cust-1", attributes={"plan": "gold"})
    text = "external_id,Email,Orders\ncust-1,ada@example.com,3\ncust-2,bob@example.com,\n"
    page = _upload(technical, text)
    mapping = {"external_id": "0", "name_1": "email", "type_1": "text", "name_2": "orders", "type_2": "number",
               "name_0": "", "type_0": "text"}  # fmt: skip
    response = technical.post(page, mapping)
    html = response.content.decode()
    assert 'id="import-run"' in html and 'id="import-progress"' in html
    chunk = technical.post(page + "chunk/", {"chunk": "0"}).json()
    assert chunk == {"created": 1, "updated": 1, "imported": 2, "total": 2, "done": True, "problems": []}
    assert Profile.objects.get(external_id="cust-1").attributes == {"plan": "gold", "email": "ada@example.com",
                                                                    "orders": 3}  # fmt: skip
    assert Profile.objects.get(external_id="cust-2").attributes == {"email": "bob@example.com"}
    assert technical.get(page).status_code == 404  # done: the upload is gone


def test_without_javascript_one_post_imports_everything(technical):
    text = "external_id,n\n" + "".join(f"c{i},{i}\n" for i in range(2500))
    page = _upload(technical, text)
    technical.post(page, {"external_id": "0", "name_0": "", "type_0": "text", "name_1": "n", "type_1": "number"})
    response = technical.post(page + "chunk/", {"all": "1"})
    assert response.status_code == 302 and Profile.objects.count() == 2500
    assert Profile.objects.get(external_id="c2499").attributes == {"n": 2499}


def test_the_import_is_for_who_writes_profiles_in_their_own_organization(technical, world):
    page = _upload(technical)
    client = Client()
    client.force_login(world.globex_admin.user)
    assert client.get(page).status_code == 404  # another organization's upload is not there
    client.force_login(world.user("marketer"))
    assert client.get(reverse("admin:journeys_profile_import")).status_code == 403
    assert "Import CSV" not in client.get(reverse("admin:journeys_profile_changelist")).content.decode()
    assert "Import CSV" in technical.get(reverse("admin:journeys_profile_changelist")).content.decode()


def test_a_file_that_is_not_csv_text_is_refused(technical):
    response = technical.post(reverse("admin:journeys_profile_import"),
                              {"file": SimpleUploadedFile("x.csv", b"\xff\xfe\x00bad")})  # fmt: skip
    assert response.status_code == 200 and "not UTF-8" in response.content.decode()
