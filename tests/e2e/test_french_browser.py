"""A French browser (Accept-Language: fr) walks the home pages of a marketer and a technical user, and a
journey's canvas: everything the product shows is in French; the header switches back to English."""

import pytest

from journeys.services import journey_create
from tests.e2e.conftest import ARTIFACTS, login
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def french(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(locale="fr-FR", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_a_marketer_and_a_technical_user_see_their_home_pages_in_french(french, live_server, world):
    journey_create(organization=world.acme, data={"name": "Relance panier", "entry_event": "cart",
                                                            "steps": [{"key": "fin", "type": "end"}],
                                                            "start": "fin"})  # fmt: skip
    login(french, live_server, world.user("marketer").username, PASSWORD)
    assert french.locator("html").get_attribute("lang") == "fr"
    home = french.locator("#content").inner_text()
    assert "Parcours" in home and "Nouveau parcours" in home and "Relance panier" in home
    assert "entrées aujourd'hui" in home.lower() and "Journeys" not in home
    french.screenshot(path=str(ARTIFACTS / "home-marketer-fr.png"), full_page=True)

    french.click("text=Relance panier")
    french.wait_for_selector("#journey-canvas .jc-node[data-key=fin]")
    page = french.locator("#content").inner_text()
    assert "Publier" in page and "Archiver" in page and "Report and runs" not in page
    french.screenshot(path=str(ARTIFACTS / "canvas-fr.png"), full_page=True)

    french.click("#logout-form button")
    login(french, live_server, world.user("technical").username, PASSWORD)
    home = french.locator("#content").inner_text()
    assert "Nouvelle action" in home and "Disjoncteurs ouverts" in home and "Derniers appels en échec" in home
    french.screenshot(path=str(ARTIFACTS / "home-technical-fr.png"), full_page=True)

    # The header's language: English for this user from now on, whatever the browser asks.
    french.select_option("#id_language", "en")
    french.wait_for_selector("text=Latest failed calls")
    assert french.locator("html").get_attribute("lang") == "en"
