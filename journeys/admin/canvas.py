"""The journey canvas's server side: the document its script draws, and its saves through the services.

The script (static/journeys/canvas.js) keeps the journey document (steps, start, layout) and
posts it whole after each gesture; the services check it as they check the API's, and their
problems come back by step so each shows on its box. A step's fields are edited in the side
panel, which is the builder's own step form rendered without the page around it.
"""

import json
import re
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from actions.models import Action
from config.common.exceptions import Conflict
from config.common.json_values import unstorable
from config.common.numbers import grouped
from journeys import services
from journeys.admin.forms import STEP_TYPES, live_journey_choices
from journeys.models import Journey
from journeys.validation import check_publishable, live_journey_ids
from tenants.admin_scoping import messages_by_field

MAX_CANVAS_BYTES = 1_000_000  # a document of 200 steps is far smaller; more is not a canvas's
STEP_KEY = re.compile(r"^steps\[([^\]]+)\](?:\.(.+))?$")
DOCUMENT_FIELDS = {"steps", "start", "layout"}


def problems_by_step(problems: dict[str, list[str]]) -> tuple[dict[str, list[str]], list[str]]:
    """Problems named `steps[<key>].<field>` go to their step's box, the others above the canvas."""
    by_step: dict[str, list[str]] = {}
    general: list[str] = []
    for where, messages in problems.items():
        found = STEP_KEY.match(where)
        for message in messages:
            if found:
                field = found.group(2)
                by_step.setdefault(found.group(1), []).append(f"{field}: {message}" if field else message)
            elif where == NON_FIELD_ERRORS:
                general.append(message)
            else:
                general.append(f"{where}: {message}")
    return by_step, general


def publish_problems(journey: Journey, actions: list[Action]) -> dict[str, list[str]]:
    """What still stops a draft from going live (nothing for a journey already past its draft)."""
    if journey.status != Journey.Status.DRAFT:
        return {}
    return check_publishable(
        steps=journey.steps, start=journey.start, entry_event=journey.entry_event,
        actions={a.pk: a for a in actions}, live_journeys=live_journey_ids(journey), audience=journey.audience,
    )  # fmt: skip


def organization_actions(journey: Journey) -> list[Action]:
    return list(Action.objects.filter(organization=journey.organization).order_by("name"))


def canvas_document(
    journey: Journey,
    *,
    editable: bool,
    counts: list[dict] | None = None,
    actions: list[Action] | None = None,
    problems: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """What the canvas draws: the document, the palette, each step's problems and, on a report, its counts.

    A page that has already read the organization's actions or checked the draft passes them in."""
    actions = organization_actions(journey) if actions is None else actions
    problems = publish_problems(journey, actions) if problems is None else problems
    by_step, general = problems_by_step(problems)
    panel = reverse("admin:journeys_journey_step", args=[journey.pk, "KEY"])
    return {
        "journey": journey.pk, "name": journey.name, "status": journey.status, "entry": journey.entry_event,
        "steps": journey.steps, "start": journey.start, "layout": journey.layout, "editable": editable,
        "palette": {
            "steps": [{"type": kind, "label": label.split(":")[0].strip(), "help": label.split(":", 1)[-1].strip()}
                      for kind, label in STEP_TYPES if kind != "action"],
            "actions": [{"id": a.pk, "name": a.name, "description": a.description}
                        for a in actions if a.status == Action.Status.ACTIVE],
        },
        "names": {str(a.pk): a.name for a in actions},
        "journeys": {str(pk): name for pk, name in live_journey_choices(journey)},  # where a jump may lead
        "problems": by_step, "general": general,
        "counts": {row["key"]: {k: v for k, v in row.items() if k != "branches"} for row in counts or []},
        "urls": {
            "save": reverse("admin:journeys_journey_canvas", args=[journey.pk]),
            "panel": panel.replace("/KEY/", "/{key}/") + "?panel=1",
            "report": reverse("admin:journeys_journey_report", args=[journey.pk]) + "?step={key}",
        },
    }  # fmt: skip


def panel_done(text: str) -> HttpResponse:
    """The side panel's answer once a step is saved or deleted: the canvas reads the header and redraws."""
    response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    response["X-Journey-Saved"] = "1"
    return response


def _refused(problems: dict[str, list[str]], status: int = 400) -> JsonResponse:
    by_step, general = problems_by_step(problems)
    return JsonResponse({"problems": by_step, "general": general}, status=status)


class CanvasViews:
    """JourneyAdmin's canvas endpoint: GET the document, POST a changed one (JSON, the admin's CSRF)."""

    def canvas_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        journey = self._journey(request, object_id)
        editable = journey.status == Journey.Status.DRAFT and self.has_change_permission(request)
        if request.method == "GET":
            return JsonResponse(canvas_document(journey, editable=editable))
        if request.method != "POST":
            return JsonResponse({"general": [_("Only GET and POST.")]}, status=405)
        if not self.has_change_permission(request):
            raise PermissionDenied
        if len(request.body) > MAX_CANVAS_BYTES:
            too_big = _("The journey is over %(size)s bytes.") % {"size": grouped(MAX_CANVAS_BYTES)}
            return _refused({NON_FIELD_ERRORS: [too_big]}, 413)
        try:
            data = json.loads(request.body)
        except (ValueError, RecursionError):
            return _refused({NON_FIELD_ERRORS: [_("The canvas sent something that is not JSON.")]})
        if problem := unstorable(data):
            return _refused({NON_FIELD_ERRORS: [problem]})
        if not isinstance(data, dict) or not data or set(data) - DOCUMENT_FIELDS:
            return _refused({NON_FIELD_ERRORS: [_("Send an object with steps, start and layout, nothing else.")]})
        try:
            journey = services.journey_update(journey=journey, data=data)
        except ValidationError as exc:
            return _refused(messages_by_field(exc))
        except Conflict as exc:
            return _refused({NON_FIELD_ERRORS: [exc.message]}, 409)
        return JsonResponse(canvas_document(journey, editable=True))
