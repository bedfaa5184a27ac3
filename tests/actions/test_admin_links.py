from django.urls import reverse

from tests.actions.helpers import make_action


def test_action_page_links_to_its_metrics_and_invocations(world, client):
    action = make_action(world.acme)
    client.force_login(world.user("technical"))
    page = client.get(reverse("admin:actions_action_change", args=[action.pk])).content.decode()
    metrics = reverse("admin:actions_invocation_metrics", args=[action.pk])
    assert metrics in page
    assert f"?action__id__exact={action.pk}" in page
    assert client.get(metrics).status_code == 200
    invocations = client.get(reverse("admin:actions_invocation_changelist") + f"?action__id__exact={action.pk}")
    assert invocations.status_code == 200
