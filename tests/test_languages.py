"""French and English (issue 18): the browser's language, else the one a user chose; the API follows
Accept-Language; and every product string has a French translation that is not fuzzy."""

import os
import shutil
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import translation

from tenants.models import UserSettings
from tests.factories import PASSWORD

ROOT = Path(settings.BASE_DIR)
SKIPPED = [".venv", ".git", "var", "locale", "bench", "tests", "docs", "staticfiles", "vendor", "__pycache__", "*.png"]


def catalogue(path: Path):
    with path.open("rb") as file:
        return read_po(file)


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_every_product_string_is_in_the_french_catalogue_and_none_is_fuzzy(domain, tmp_path, settings):
    if shutil.which("xgettext") is None:
        pytest.fail("Finding the product's strings needs GNU gettext: apt-get install gettext (make test does).")
    # makemessages writes next to the sources it reads: it reads a copy, so that locale/ is left alone.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*SKIPPED))
    settings.LOCALE_PATHS = [source / "found"]
    here = os.getcwd()
    os.chdir(source)
    try:
        call_command("makemessages", locale=["fr"], domain=domain, verbosity=0)
    finally:
        os.chdir(here)
    found = source / "found" / "fr" / "LC_MESSAGES" / f"{domain}.po"
    wanted = {message.id for message in catalogue(found) if message.id} if found.exists() else set()
    french = catalogue(ROOT / "locale" / "fr" / "LC_MESSAGES" / f"{domain}.po")
    translated = {m.id for m in french if m.id and not m.fuzzy and all(m.string if isinstance(m.string, tuple)
                                                                        else [m.string])}  # fmt: skip
    with translation.override("fr"):  # Django's and DRF's own catalogues translate their strings
        theirs = {m for m in wanted - translated if not isinstance(m, tuple) and translation.gettext(m) != m}
    missing = sorted(str(m) for m in wanted - translated - theirs)
    assert not missing, f"{len(missing)} strings without a French translation, e.g. {missing[:10]}"
    assert not [m.id for m in french if m.id and m.fuzzy], "fuzzy entries in the French catalogue"
    if domain == "django":
        assert len(wanted) > 100  # the extraction found the product's strings


def test_the_login_page_follows_the_browser_language():
    french = Client().get("/admin/login/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9,en;q=0.5").content.decode()
    english = Client().get("/admin/login/").content.decode()
    assert "Nom d" in french and "Mot de passe" in french and 'lang="fr"' in french
    assert "Username:" in english and 'lang="en"' in english


def test_an_api_error_follows_accept_language():
    french = Client().get("/api/v1/orgs/acme/journeys/", HTTP_ACCEPT_LANGUAGE="fr")
    english = Client().get("/api/v1/orgs/acme/journeys/")
    assert french.status_code == english.status_code == 401
    assert french.json()["detail"] == "Informations d'authentification non fournies."
    assert english.json()["detail"] == "Authentication credentials were not provided."
    assert french["Content-Language"] == "fr"


def test_a_language_chosen_in_the_header_is_kept_for_the_user_on_another_browser(world):
    user = world.user("marketer")
    client = Client()
    client.force_login(user)
    response = client.post("/admin/language/", {"language": "fr", "next": "/admin/journeys/journey/"})
    assert response.status_code == 302 and response["Location"] == "/admin/journeys/journey/"
    assert UserSettings.objects.get(user=user).language == "fr"
    assert 'lang="fr"' in client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    other = Client()  # another browser, which asks for English: the user's choice wins once logged in
    other.post("/admin/login/", {"username": user.username, "password": PASSWORD}, HTTP_ACCEPT_LANGUAGE="en")
    assert 'lang="fr"' in other.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_a_language_that_is_not_offered_changes_nothing(world):
    client = Client()
    client.force_login(world.user("viewer"))
    response = client.post("/admin/language/", {"language": "de", "next": "https://evil.example/"})
    assert response["Location"] == "/admin/" and not UserSettings.objects.filter(user=world.user("viewer")).exists()


def test_dates_on_the_admin_pages_follow_the_language(world):
    from django.urls import reverse
    from django.utils import formats, timezone

    from tests.actions.helpers import make_action

    client = Client()
    client.force_login(world.user("technical"))
    url = reverse("admin:actions_invocation_metrics", args=[make_action(world.acme).pk])
    today = timezone.localtime()
    # The date parts of each language's DATETIME_FORMAT: "3 décembre 2026" and "Dec. 3, 2026".
    for language, date_part in (("fr", "j F Y"), ("en", "N j, Y")):
        page = client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()
        with translation.override(language):
            assert formats.date_format(today, date_part) in page


def test_numbers_in_messages_follow_the_language():
    from config.common.numbers import decimal, grouped

    with translation.override("fr"):
        assert grouped(65536) == "65\u202f536" or grouped(65536) == "65\xa0536"
        assert decimal(42.857) == "42,9"
    with translation.override("en"):
        assert (grouped(65536), decimal(42.857)) == ("65,536", "42.9")
