"""A Spanish-speaking participant on a phone: the browser's language (es-ES) opens the enrollment in
Spanish, every page says so in its `lang` attributes, and axe-core finds no serious or critical
violation on any step (eligibility, consent, connect, the private page with its language menu)."""

from __future__ import annotations

import pytest

from cohorts import enrollment
from cohorts.models import ConsentRecord, EligibilityQuestion, Participant, Study
from tests.browser.test_accessibility import violations
from tests.factories import ConsentDocumentFactory, StudyFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def spanish_phone(browser):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="es-ES"
    )
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def check(page, shot, name: str, report: dict) -> None:
    shot(page, name)
    assert page.get_attribute("html", "lang") == "es", name
    report[name] = [(v["id"], v["impact"], len(v["nodes"])) for v in violations(page)]


def test_enrollment_in_spanish_on_a_phone(live_server, spanish_phone, shot):
    page = spanish_phone
    study = StudyFactory(
        slug="salud", name="Estudio Salud", enrollment_mode=Study.EnrollmentMode.OPEN,
        languages="en, es", contact_email="equipo@example.org",
    )  # fmt: skip
    document = ConsentDocumentFactory(
        study=study, version=1, title="Home BP", body="Measure at home.", statements="I agree.\nI agree too."
    )
    enrollment.consent_text_add(
        actor=None, document=document, language="es", title="Presión arterial en casa",
        body="Se medirá la presión arterial en casa.", statements="Acepto.\nTambién acepto.",
    )  # fmt: skip
    question = EligibilityQuestion.objects.create(
        study=study, text="¿Tiene 18 años o más?", required_answer=True
    )
    report: dict = {}

    page.goto(f"{live_server.url}/enroll/{study.slug}/")
    assert page.locator("h1").inner_text() == "¿Puede participar?"
    # The language menu names each language in itself.
    assert page.locator("nav.languages a[hreflang=en]").get_attribute("lang") == "en"
    assert page.locator("nav.languages a[aria-current]").inner_text() == "Español"
    check(page, shot, "eligibility", report)
    page.check(f"input[name=q{question.pk}][value=yes]")
    page.get_by_role("button", name="Continuar").click()

    page.wait_for_url("**/enroll/consent/")
    assert page.locator("h1").inner_text() == "Presión arterial en casa"
    check(page, shot, "consent", report)
    page.get_by_role("button", name="Acepto y firmo").click()  # nothing ticked: the errors, in Spanish
    assert "Marque esta casilla para participar." in page.content()
    check(page, shot, "consent-errors", report)
    page.check("input[name=agree_0]")
    page.check("input[name=agree_1]")
    page.check("input[name=keep_data][value=keep]")
    page.fill("input[name=signature]", "Rosa Pérez")
    page.get_by_role("button", name="Acepto y firmo").click()

    page.wait_for_url("**/enroll/connect/")
    assert page.get_by_role("heading", level=1).inner_text() == "Vincule su cuenta de Withings"
    check(page, shot, "connect", report)
    record = ConsentRecord.objects.get(participant__study=study)
    assert record.language == "es"
    assert record.rendered_text.startswith("Presión arterial en casa\n\nVersión 1\n\n")
    assert Participant.objects.get(study=study).language == "es"

    page.goto(page.locator("#private-link").inner_text().strip())
    assert page.get_by_role("heading", level=1).inner_text() == "Su participación"
    options = page.locator("#language-choice option")
    assert [options.nth(i).get_attribute("lang") for i in range(options.count())] == ["en", "es"]
    check(page, shot, "status", report)

    assert report == {name: [] for name in report}
