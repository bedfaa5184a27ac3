"""Send windows through a real Celery worker and a real receiver on loopback: a call outside its window is held
as a pending row, one inside is sent, and the held one goes once its action's window changes."""

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from actions.models import Invocation
from actions.services.actions import action_create, action_update
from tests.actions.helpers import SMS_ACTION
from tests.actions.test_invocations_worker import Receiver, enqueue
from tests.workers import finished, wait_for

pytestmark = pytest.mark.worker


@pytest.fixture
def action_factory(world, httpserver):
    world.acme.allow_http = True
    world.acme.save()
    url = httpserver.url_for("/v1/{{account}}/messages")
    return lambda **data: action_create(organization=world.acme, data={**SMS_ACTION, "url": url, **data})


def test_a_worker_holds_a_call_outside_its_window_and_sends_one_inside_it(workers, action_factory, httpserver):
    receiver = Receiver(httpserver)
    now = timezone.now()  # the organization's time zone is UTC
    closed_day = (now.date() + timedelta(days=3)).weekday()  # whole days, but only one three days from now
    shut = action_factory(name="Shut", send_window={"days": [closed_day], "start": "00:00", "end": "00:00"})
    always = action_factory(name="Always", send_window={"start": "00:00", "end": "00:00"})
    workers.start()
    [held] = enqueue(shut)
    [sent] = finished(*enqueue(always))
    assert sent.status == "succeeded" and sent.window_wait_until is None
    opening = datetime.combine(now.date() + timedelta(days=3), time(0), tzinfo=now.tzinfo)
    wait_for(lambda: Invocation.objects.filter(pk=held.pk, window_wait_until=opening).exists(),
             message="the call to be held until its window opens")  # fmt: skip
    held.refresh_from_db()
    assert (held.status, held.attempts, held.next_attempt_at) == ("pending", 0, opening)
    assert len(receiver.calls) == 1

    action_update(action=shut, data={"send_window": None})  # any time now: the held call goes at once
    [released] = finished(held)
    assert (released.status, released.window_wait_until, len(receiver.calls)) == ("succeeded", None, 2)
    assert receiver.keys() == {str(sent.pk), str(held.pk)}
