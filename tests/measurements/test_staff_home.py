"""The staff home at /admin/: today's worklist and a card per study for coordinators, exports for data
managers, read-only cards for investigators, every study for operators — each number scoped to the
user's studies and sites, in a query count that does not grow with participants. Django's list of
models stays at /admin/models/."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cohorts.models import Participant, Role
from measurements.home import staff_home
from measurements.models import Alert, ExportJob, StudyProtocol
from tests.factories import MembershipFactory, ParticipantFactory, SiteFactory, StudyFactory, UserFactory
from tests.measurements.test_monitoring_admin import populate

pytestmark = pytest.mark.django_db
HOME = "/admin/"


def home_html(client) -> str:
    response = client.get(HOME)
    assert response.status_code == 200
    assert response.templates[0].name == "admin/home.html"
    return response.content.decode()


def card(html: str, slug: str) -> str:
    assert f'id="study-{slug}"' in html, slug
    return html.split(f'id="study-{slug}"')[1].split("</section>")[0]


def figures(card_html: str) -> dict[str, str]:
    found = dict(re.findall(r'data-figure="(\w+)">([^<]+)<', card_html))
    found.update(re.findall(r'data-status="(\w+)">(\d+)<', card_html))
    return found


@pytest.fixture
def world():
    """Study alpha (sites north and south) and study bravo, with work in both."""
    alpha = StudyFactory(slug="alpha", name="Alpha heart study")
    StudyProtocol.objects.create(study=alpha, duration_days=None, adherence_target_percent=70)
    north, south = SiteFactory(study=alpha, code="north", name="North clinic"), SiteFactory(study=alpha)
    north_people = populate(alpha, north, 3)  # Q-00000..2: 17/28 readings each, an alert on Q-00000
    south_people = populate(alpha, south, 4, offset=100)  # Q-00100..3, alerts on Q-00100 and Q-00103
    Participant.objects.filter(pk=north_people[1].pk).update(link_status=Participant.LinkStatus.NEEDS_REAUTH)
    Participant.objects.filter(pk__in=[p.pk for p in south_people[:2]]).update(
        link_status=Participant.LinkStatus.REVOKED
    )
    ParticipantFactory(study=alpha, site=south, code="S-INVITED", status=Participant.Status.INVITED)
    bravo = StudyFactory(slug="bravo", name="Bravo kidney study")
    populate(bravo, SiteFactory(study=bravo), 2, offset=500)  # Q-00500, Q-00501
    return alpha, north, bravo


def test_coordinator_home_has_worklist_and_their_studys_card_only(client, world):
    alpha, _north, bravo = world
    client.force_login(MembershipFactory(study=alpha, role=Role.COORDINATOR).user)
    html = home_html(client)
    assert "<h1>Home</h1>" in html
    assert '<h2 id="home-worklist">Today\'s worklist</h2>' in html
    assert "Your studies" in html
    assert figures(card(html, "alpha")) == {
        "participants": "8",
        "links_broken": "3",
        "open_alerts": "3",
        "adherence": "61%",  # 17 of 28 expected readings over the last 7 days, target 70 %
        "Invited": "1", "Consented": "0", "Linked": "0", "Active": "7", "Withdrawn": "0", "Completed": "0",
    }  # fmt: skip
    assert "target 70%" in card(html, "alpha")
    assert 'class="home-warn"' in card(html, "alpha")
    worklist = html.split('id="home-worklist"')[1].split("</section>")[0]
    # Most urgent first: links broken (the one with an open alert waiting longest first), no data (open
    # alerts), below target (61 % of a 70 % target).
    assert re.findall(r">(Q-\d+)</a>", worklist) == ["Q-00100", "Q-00001", "Q-00101", "Q-00000", "Q-00103",
                                                    "Q-00002", "Q-00102"]  # fmt: skip
    assert "Link: Needs to link again" in worklist
    add = f"/admin/cohorts/participant/add/?study={alpha.pk}"
    assert f'href="{add}"' in card(html, "alpha")
    assert f'<option value="{alpha.pk}" selected>' in client.get(add).content.decode()
    assert "New export" not in html
    assert 'id="home-exports"' not in html
    assert "All models (site administration)" in html
    assert bravo.name not in html
    assert "Q-0050" not in html
    assert 'id="study-bravo"' not in html


def test_site_limited_coordinator_sees_only_their_sites_numbers(client, world):
    alpha, north, _bravo = world
    client.force_login(MembershipFactory(study=alpha, role=Role.COORDINATOR, site=north).user)
    html = home_html(client)
    alpha_card = card(html, "alpha")
    assert figures(alpha_card) == {
        "participants": "3",
        "links_broken": "1",
        "open_alerts": "1",
        "adherence": "61%",
        "Invited": "0", "Consented": "0", "Linked": "0", "Active": "3", "Withdrawn": "0", "Completed": "0",
    }  # fmt: skip
    assert "Coordinator, North clinic only" in alpha_card
    worklist = html.split('id="home-worklist"')[1].split("</section>")[0]
    assert re.findall(r">(Q-\d+)</a>", worklist) == ["Q-00001", "Q-00000", "Q-00002"]
    for absent in ("Q-0010", "S-INVITED", "Bravo", "Q-0050"):
        assert absent not in html


def test_data_manager_home_shows_their_studys_exports(client, world):
    alpha, _north, bravo = world
    manager = MembershipFactory(study=alpha, role=Role.DATA_MANAGER).user
    mine = ExportJob.objects.create(
        study=alpha, requested_by=manager, format="csv", status=ExportJob.Status.DONE, rows_done=51
    )
    other = ExportJob.objects.create(study=bravo, requested_by=UserFactory(), format="fhir", rows_done=77)
    client.force_login(manager)
    html = home_html(client)
    exports = html.split('id="home-exports"')[1].split("</section>")[0]
    assert reverse("admin:measurements_exportjob_study", args=["alpha"]) in exports
    assert reverse("admin:measurements_exportjob_progress", args=[mine.pk]) in exports
    assert "<td>51</td>" in exports
    assert reverse("admin:measurements_exportjob_progress", args=[other.pk]) not in html
    assert "<td>77</td>" not in html
    assert "FHIR" not in html
    assert bravo.name not in html
    assert 'id="home-worklist"' not in html
    assert "Add a participant" not in html
    assert figures(card(html, "alpha"))["participants"] == "8"


def test_investigator_cards_are_read_only(client, world):
    alpha, _north, bravo = world
    client.force_login(MembershipFactory(study=alpha, role=Role.INVESTIGATOR).user)
    html = home_html(client)
    assert figures(card(html, "alpha"))["open_alerts"] == "3"
    assert "Investigator (read-only)" in card(html, "alpha")
    for absent in ('id="home-worklist"', 'id="home-exports"', "Add a participant", ">Invite<", "New export",
                   "Acknowledge", bravo.name):  # fmt: skip
        assert absent not in html


def test_operator_sees_every_study(client, world):
    client.force_login(UserFactory(is_superuser=True))
    html = home_html(client)
    assert "All studies" in html
    assert figures(card(html, "alpha"))["participants"] == "8"
    assert figures(card(html, "bravo"))["participants"] == "2"
    assert "Q-00500" in html.split('id="home-worklist"')[1]
    assert 'id="home-exports"' in html


def test_staff_without_a_study_get_an_empty_home(client, world):
    client.force_login(UserFactory())
    html = home_html(client)
    assert "You are not a member of any study yet." in html
    for absent in ("Alpha", "Bravo", "Q-0", 'id="home-worklist"', 'id="home-exports"'):
        assert absent not in html


def test_the_model_list_stays_reachable(client, world):
    alpha, _north, _bravo = world
    client.force_login(MembershipFactory(study=alpha, role=Role.COORDINATOR).user)
    assert reverse("admin:models") == "/admin/models/"
    assert 'href="/admin/models/"' in home_html(client)
    response = client.get("/admin/models/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Site administration</h1>" in html
    assert '<a href="/admin/">Home</a> &rsaquo; Site administration' in html
    assert 'href="/admin/cohorts/participant/"' in html
    assert 'href="/admin/measurements/monitoredparticipant/"' in html


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.DATA_MANAGER, None])
def test_home_query_count_does_not_grow_with_participants(client, role):
    alpha = StudyFactory(slug="alpha")
    StudyProtocol.objects.create(study=alpha, duration_days=None)
    site = SiteFactory(study=alpha)
    bravo = StudyFactory(slug="bravo")
    user = MembershipFactory(study=alpha, role=role).user if role else UserFactory(is_superuser=True)
    client.force_login(user)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            home_html(client)
        return len(ctx.captured_queries)

    populate(alpha, site, 3)
    populate(bravo, SiteFactory(study=bravo), 2, offset=50)
    ExportJob.objects.create(study=alpha, requested_by=user, format="csv")
    small = count()
    populate(alpha, site, 150, offset=1000)
    populate(bravo, SiteFactory(study=bravo), 40, offset=5000)
    ExportJob.objects.bulk_create(ExportJob(study=alpha, requested_by=user, format="json") for _ in range(30))
    large = count()
    assert small == large, (small, large)
    assert large <= 14, large


def test_selector_scopes_through_memberships(world):
    alpha, north, _bravo = world
    user = MembershipFactory(study=alpha, role=Role.COORDINATOR, site=north).user
    home = staff_home(user=user)
    assert [c.study.slug for c in home.cards] == ["alpha"]
    (alpha_card,) = home.cards
    assert (alpha_card.participants, alpha_card.links_broken, alpha_card.open_alerts) == (3, 1, 1)
    assert alpha_card.can_edit
    assert not alpha_card.can_export
    assert Alert.objects.filter(study=alpha, resolved_at__isnull=True).count() == 3
    assert [item.participant.code for item in home.worklist] == ["Q-00001", "Q-00000", "Q-00002"]
    assert home.exports is None
