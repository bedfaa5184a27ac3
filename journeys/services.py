"""Writes for profiles, events and journeys (SPEC sections 4 and 5)."""

import contextlib
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from actions.delivery.calls import call_action, render, shown_request
from actions.delivery.rendering import RenderError
from actions.models import Action
from actions.services.samples import sample_from_schema
from config.common.db import update_rows
from config.common.exceptions import Conflict
from journeys import engine, run_endings, steps
from journeys.expressions import ExpressionError, charged_to, compile_expression
from journeys.models import Event, Journey, Profile, Segment
from journeys.validation import (
    audience_problems,
    check_publishable,
    check_shape,
    exit_events_problem,
    is_id,
    layout_errors,
    live_journey_ids,
)
from tenants.models import Organization


@transaction.atomic
def profile_put(*, organization: Organization, external_id: str, attributes: dict[str, Any]) -> tuple[Profile, bool]:
    """Create the profile or replace its attributes; (profile, created)."""
    profile, created = Profile.objects.select_for_update().get_or_create(
        organization=organization, external_id=external_id, defaults={"attributes": attributes}
    )
    if not created:
        profile.attributes = attributes
        profile.save(update_fields=["attributes", "updated_at"])
    return profile, created


@transaction.atomic
def events_ingest(*, organization: Organization, events: list[dict[str, Any]]) -> dict[str, int]:
    """Store validated events at once: profiles created or merged, a client `id` stored only once.

    Returns {"accepted": stored now, "duplicates": ids already stored}. Nothing is stored unless
    everything is: the caller answers 202 only after this commits.
    """
    now = timezone.now()
    external_ids = list(dict.fromkeys(e["profile_id"] for e in events))
    Profile.objects.bulk_create(
        [Profile(organization=organization, external_id=x, created_at=now) for x in external_ids],
        ignore_conflicts=True,
    )
    # Locked in a stable order, so that concurrent batches merging the same profiles cannot deadlock.
    profiles = {
        p.external_id: p
        for p in Profile.objects.select_for_update()
        .filter(organization=organization, external_id__in=external_ids)
        .order_by("pk")
    }
    merged = set()
    for event in events:
        if event.get("profile"):
            profile = profiles[event["profile_id"]]
            profile.attributes = {**profile.attributes, **event["profile"]}
            merged.add(profile.external_id)
    if merged:
        for external_id in merged:
            profiles[external_id].updated_at = now
        update_rows([profiles[x] for x in merged], ["attributes", "updated_at"])

    client_ids = [e["id"] for e in events if e.get("id")]
    seen = set(
        Event.objects.filter(organization=organization, client_id__in=client_ids).values_list("client_id", flat=True)
    )
    rows, duplicates = [], 0
    for event in events:
        client_id = event.get("id") or ""
        if client_id and client_id in seen:
            duplicates += 1
            continue
        if client_id:
            seen.add(client_id)
        rows.append(
            Event(
                organization=organization, client_id=client_id, name=event["name"],
                profile=profiles[event["profile_id"]], data=event.get("data") or {},
                occurred_at=event.get("occurred_at") or now, received_at=now,
            )
        )  # fmt: skip
    # A concurrent request may store the same id first: the constraint keeps one, ignore_conflicts the rest.
    Event.objects.bulk_create(rows, ignore_conflicts=True)
    if rows:
        transaction.on_commit(engine.wake_events)
    return {"accepted": len(rows), "duplicates": duplicates}


# --- journeys -----------------------------------------------------------------------

JOURNEY_FIELDS = [
    "name", "description", "entry_event", "audience", "reentry", "exit_events", "max_run_days", "steps", "start",
    "layout",
]  # fmt: skip
FIXED_WHEN_PUBLISHED = {"steps", "start", "entry_event", "audience", "reentry", "exit_events", "max_run_days"}
MAX_RUN_DAYS = 3650
# Statuses in the words of the messages refusing a change ("closed" as the API says); each refusal.
STATUS_WORDS = {
    "draft": gettext_lazy("draft"), "live": gettext_lazy("live"), "paused": gettext_lazy("paused"),
    "stopped": gettext_lazy("stopped"), "closed": gettext_lazy("closed"),
}  # fmt: skip
REFUSED = {
    "pause": gettext_lazy("A %(status)s journey cannot be paused; only a %(allowed)s one can."),
    "resume": gettext_lazy("A %(status)s journey cannot be resumed; only a %(allowed)s one can."),
    "stop": gettext_lazy("A %(status)s journey cannot be stopped; only a %(allowed)s one can."),
    "close": gettext_lazy("A %(status)s journey cannot be closed; only a %(allowed)s one can."),
}


def copy_name(name: str) -> str:
    """The name of a journey's duplicate, "<name> (copy)", cut to fit the 200 characters a name has."""
    said = _("%(name)s (copy)")
    room = 200 - len(said % {"name": ""})
    return said % {"name": name[:room]}


def _audience_errors(journey: Journey) -> dict[str, list[str]]:
    errors = audience_problems(journey.audience)
    if errors or journey.audience is None:
        return errors
    if journey.entry_event:
        return {"audience": [_("a journey starts with an entry event or an audience, not both")]}
    if not Segment.objects.filter(organization=journey.organization, pk=journey.audience["segment"]).exists():
        return {"audience.segment": [_("choose a segment of this organization")]}
    return {}


def _journey_errors(journey: Journey) -> dict[str, list[str]]:
    errors = check_shape(journey.steps, journey.start) | layout_errors(journey)
    if not isinstance(journey.name, str) or not journey.name.strip():
        errors.setdefault("name", []).append(_("a journey needs a name"))
    if journey.reentry not in Journey.Reentry.values:
        errors.setdefault("reentry", []).append(
            _("must be one of %(values)s") % {"values": ", ".join(Journey.Reentry.values)}
        )
    days = journey.max_run_days
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_RUN_DAYS:
        errors.setdefault("max_run_days", []).append(_("a whole number of days, 1 to %(max)s") % {"max": MAX_RUN_DAYS})
    errors |= _audience_errors(journey)
    if problem := exit_events_problem(journey.exit_events):
        errors.setdefault("exit_events", []).append(problem)
    if isinstance(journey.steps, list):
        action_steps = [
            (index, step)
            for index, step in enumerate(journey.steps)
            if isinstance(step, dict) and step.get("type") == "action" and step.get("action") is not None
        ]
        # An id out of range is no object's (check_shape says so): the database would refuse it.
        wanted = [step["action"] for _, step in action_steps if is_id(step["action"])]
        known = set(
            Action.objects.filter(organization=journey.organization, pk__in=wanted).values_list("pk", flat=True)
        )
        for index, step in action_steps:
            if is_id(step["action"]) and step["action"] not in known:  # another organization's is unknown here
                where = f"steps[{step.get('key', index)}].action"
                errors.setdefault(where, []).append(_("choose an action of this organization"))
    return errors


def _save_journey(journey: Journey) -> Journey:
    errors = _journey_errors(journey)
    if errors:
        raise ValidationError(errors)
    journey.save()
    ids = {s["action"] for s in journey.steps if s.get("type") == "action" and isinstance(s.get("action"), int)}
    journey.actions.set(Action.objects.filter(organization=journey.organization, pk__in=ids))
    return journey


@transaction.atomic
def journey_create(*, organization: Organization, data: dict[str, Any]) -> Journey:
    journey = Journey(organization=organization, **{k: v for k, v in data.items() if k in JOURNEY_FIELDS})
    return _save_journey(journey)


@transaction.atomic
def journey_update(*, journey: Journey, data: dict[str, Any]) -> Journey:
    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if journey.status != Journey.Status.DRAFT and set(data) & FIXED_WHEN_PUBLISHED:
        status = STATUS_WORDS[journey.status]
        raise Conflict(
            _("This journey is %(status)s: its steps cannot change. Make a new version to edit it.")
            % {"status": status},
            {"status": [_("The journey is %(status)s.") % {"status": status}]},
        )
    for name in JOURNEY_FIELDS:
        if name in data:
            setattr(journey, name, data[name])
    return _save_journey(journey)


def _transition(journey: Journey, verb: str, to: str) -> Journey:
    """Move the journey to `to` if Journey.ALLOWED_FROM lets `verb` leave its status (REFUSED says why not)."""
    current = Journey.objects.select_for_update().get(pk=journey.pk)
    if not current.allows(verb):
        status, allowed = STATUS_WORDS[current.status], [str(STATUS_WORDS[s]) for s in Journey.ALLOWED_FROM[verb]]
        raise Conflict(
            REFUSED[verb] % {"status": status, "allowed": _(" or ").join(allowed)},
            {"status": [_("The journey is %(status)s.") % {"status": status}]},
        )
    current.status = to
    current.save(update_fields=["status", "updated_at"])
    return current


@transaction.atomic
def journey_publish(*, journey: Journey) -> Journey:
    """Check the whole journey, listing every problem; live it goes, replacing its previous version."""
    current = Journey.objects.select_for_update().get(pk=journey.pk)
    if not current.allows("publish"):
        status = STATUS_WORDS[current.status]
        raise Conflict(_("Only a draft can be published; this journey is %(status)s.") % {"status": status})
    actions = {a.pk: a for a in Action.objects.filter(organization=current.organization)}
    problems = check_publishable(
        steps=current.steps, start=current.start, entry_event=current.entry_event, actions=actions,
        live_journeys=live_journey_ids(current), audience=current.audience,
    )  # fmt: skip
    if problems:
        raise ValidationError(problems)
    for previous in Journey.objects.filter(pk=current.previous_id or 0).exclude(status=Journey.Status.CLOSED):
        previous.status = Journey.Status.CLOSED  # saved, not updated in bulk: the audit trail records it
        previous.save(update_fields=["status", "updated_at"])
    current.status, current.published_at = Journey.Status.LIVE, timezone.now()
    current.save(update_fields=["status", "published_at", "updated_at"])
    return current


@transaction.atomic
def journey_pause(*, journey: Journey) -> Journey:
    return _transition(journey, "pause", Journey.Status.PAUSED)


@transaction.atomic
def journey_resume(*, journey: Journey) -> Journey:
    journey = _transition(journey, "resume", Journey.Status.LIVE)
    engine.runs_resume(journey=journey)
    return journey


@transaction.atomic
def journey_stop(*, journey: Journey) -> Journey:
    """No new run starts; open runs end as stopped and their unsent calls are cancelled."""
    journey = _transition(journey, "stop", Journey.Status.STOPPED)
    run_endings.runs_stop(journey=journey, now=timezone.now())
    return journey


@transaction.atomic
def journey_close(*, journey: Journey) -> Journey:
    return _transition(journey, "close", Journey.Status.CLOSED)


@transaction.atomic
def journey_new_version(*, journey: Journey) -> Journey:
    """A draft copy that replaces this version when it is published."""
    current = Journey.objects.select_for_update().get(pk=journey.pk)
    if not current.allows("new-version"):
        said = _("A new version is made from a published journey; this one is %(status)s.")
        raise Conflict(said % {"status": STATUS_WORDS[current.status]})
    if Journey.objects.filter(previous=current).exists():
        raise Conflict(_("This journey already has a newer version."))
    draft = Journey(
        organization=current.organization, name=current.name, description=current.description,
        entry_event=current.entry_event, reentry=current.reentry, steps=current.steps, start=current.start,
        layout=current.layout, exit_events=current.exit_events, max_run_days=current.max_run_days,
        audience=current.audience,
        version=current.version + 1, previous=current,
    )  # fmt: skip
    return _save_journey(draft)


@transaction.atomic
def journey_duplicate(*, journey: Journey) -> Journey:
    """A new draft with this journey's steps and settings, a journey of its own: version 1, no runs.
    An archived or stopped journey is started over this way."""
    copy = Journey(
        organization=journey.organization, name=copy_name(journey.name), description=journey.description,
        entry_event=journey.entry_event, reentry=journey.reentry, steps=journey.steps, start=journey.start,
        layout=journey.layout, exit_events=journey.exit_events, max_run_days=journey.max_run_days,
        audience=journey.audience,
    )  # fmt: skip
    return _save_journey(copy)


@transaction.atomic
def journey_delete(*, journey: Journey) -> None:
    """Only a draft is deleted; a journey that ran is closed instead, keeping its history."""
    if journey.status != Journey.Status.DRAFT:
        status = STATUS_WORDS[journey.status]
        raise Conflict(_("A %(status)s journey is not deleted; stop and close it instead.") % {"status": status})
    journey.delete()


# --- test mode and reports ----------------------------------------------------------

TEST_MAX_STEPS = 100


def _test_call(
    step: dict, decision: steps.Decision, scope: dict[str, Any], dry_run: bool, entry: dict[str, Any],
    given: dict[str, Any] | None = None,
) -> steps.Decision:  # fmt: skip
    """Render (and unless `dry_run`, send) one action step's call; the request and response go into `entry`.

    A dry run answers the call with `given` (the test's own answer for this step), else with a sample
    of the action's response schema and status 200, so that branches on the answer can be tried."""
    try:
        rendered = render(decision.action, decision.values)
        if dry_run:
            entry["request"] = shown_request(decision.action, rendered, [])
            entry["simulated"] = answer = _simulated(decision.action, given)
            outcome = "succeeded" if 200 <= answer["status"] < 300 else f"http_{answer['status']}"
            return steps.after_call(step, steps.call_entry(outcome, answer["body"]), scope["steps"])
        result = call_action(decision.action, rendered, idempotency_key=str(uuid.uuid4()))
    except (RenderError, TypeError, ValueError) as exc:
        return steps.after_error(step, scope["steps"], str(exc))
    entry["request"], entry["outcome"] = result.request, result.outcome
    body = result.response_json if result.response_json is not None else result.response_body
    entry["response"] = {"status_code": result.status_code, "body": body, "error": result.error}
    return steps.after_call(step, steps.call_entry(result.outcome, body), scope["steps"])


def _simulated(action: Action, given: dict[str, Any] | None) -> dict[str, Any]:
    """The answer a dry run gives an action step, and where it came from (`source`)."""
    if given is not None:
        return {"status": given.get("status", 200), "body": given.get("body"), "source": "given"}
    if action.response_schema:
        return {"status": 200, "body": sample_from_schema(action.response_schema), "source": "response_schema"}
    return {"status": 200, "body": None, "source": "none"}


def _checked_responses(journey: Journey, responses: dict[str, Any], dry_run: bool) -> dict[str, Any]:
    """The test's own answers, each for an action step of the journey."""
    if responses and not dry_run:
        raise ValidationError(
            {"responses": [_("Answers are simulated in a dry run only: a real test sends the calls.")]}
        )
    action_steps = sorted(s["key"] for s in journey.steps if s.get("type") == "action")
    for key in responses:
        if key not in action_steps:
            known = ", ".join(action_steps) or _("none")
            said = _("%(key)s is not an action step of this journey (%(known)s).") % {"key": key, "known": known}
            raise ValidationError({f"responses.{key}": [said]})
    return responses


ANSWER_HIDDEN = gettext_lazy("(from a provider's answer: shown to technical users only)")
ANSWER_ERROR_HIDDEN = gettext_lazy("An expression that reads a provider's answer failed; technical users see why.")


def _step_references(step: dict) -> set[str]:
    sources = [*(step.get("parameters") or {}).values(), *(b.get("expression") for b in step.get("branches") or [])]
    sources.append(step.get("until"))
    found: set[str] = set()
    for source in sources:
        if isinstance(source, str):
            with contextlib.suppress(ExpressionError):
                found |= compile_expression(source).step_references
    return found


def _parameters_shown(step: dict, values: dict[str, Any], answered: set[str]) -> dict[str, Any]:
    """A real test's parameter values, less those computed from a provider's answer (for whoever does
    not see response bodies: mapping a response into a parameter must not show it)."""
    sources = step.get("parameters") or {}
    return {
        name: str(ANSWER_HIDDEN) if answered & compile_expression(sources[name]).step_references else value
        for name, value in values.items()
    }


def _shown(entry: dict[str, Any], sees_bodies: bool) -> dict[str, Any]:
    """A path entry as this person may see it: the request and response body only with invocation bodies."""
    if sees_bodies:
        return entry
    entry.pop("request", None)
    if "response" in entry:
        entry["response"] = {"status_code": entry["response"]["status_code"]}
    return entry


def journey_test(
    *, journey: Journey, profile: dict[str, Any], event: dict[str, Any], dry_run: bool = True, sees_bodies: bool,
    responses: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Run the journey now for this profile and event, waits skipped (SPEC section 5), and tell the path.

    Nothing is stored. With `dry_run` no call is sent: each action step gets the answer `responses`
    gives for its key, else a sample of its action's response schema (`simulated` in the path).
    Rendered requests and response bodies only for those who may see invocation bodies (SPEC section 1).
    """
    responses = _checked_responses(journey, responses or {}, dry_run)
    actions = {a.pk: a for a in Action.objects.filter(organization=journey.organization)}
    problems = check_publishable(steps=journey.steps, start=journey.start, entry_event=journey.entry_event or "-",
                                 actions=actions, live_journeys=live_journey_ids(journey))  # fmt: skip
    if problems:
        raise ValidationError(problems)
    by_key = {s["key"]: s for s in journey.steps}
    now = timezone.now()
    scope = {
        "profile": profile,
        "event": {"name": event.get("name", journey.entry_event), "data": event.get("data") or {}},
        "steps": {},
        "now": now,
    }
    path, key, result = [], journey.start, "completed"
    answered: set[str] = set()  # steps whose real call answered: their bodies are only for those who see bodies
    for _taken in range(TEST_MAX_STEPS):
        step = by_key[key]
        entry: dict[str, Any] = {"key": key, "type": step["type"]}
        path.append(entry)
        with charged_to(journey.organization_id):
            decision = steps.decide(step, scope, now=now, actions=actions, skip_waits=True, seed=str(journey.pk))
        if decision.kind == steps.END:
            break
        reads_answers = not sees_bodies and bool(_step_references(step) & answered)
        if decision.kind == steps.CALL:
            entry["parameters"] = _parameters_shown(step, decision.values, answered if not sees_bodies else set())
            decision = _test_call(step, decision, scope, dry_run, entry, responses.get(key))
            if not dry_run:
                answered.add(key)
        entry["outcome"] = decision.outcome
        if decision.error:
            entry["error"] = str(ANSWER_ERROR_HIDDEN) if reads_answers else decision.error
        if not decision.next:
            result = "failed" if decision.failed else result
            break
        entry["next"] = decision.next
        key = decision.next
    else:
        result = _("stopped after %(count)s steps (a loop through waits, which a test skips)") % {
            "count": TEST_MAX_STEPS
        }
    return {"dry_run": dry_run, "result": result, "path": [_shown(entry, sees_bodies) for entry in path]}
