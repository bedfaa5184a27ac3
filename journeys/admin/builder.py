"""The journey builder in the admin (SPEC section 7): marketers compose, check, publish and follow
journeys through forms, a diagram and buttons, never JSON. Every write goes through the services."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from actions.models import Action
from config.common.exceptions import Conflict
from journeys import services
from journeys.admin.canvas import CanvasViews, canvas_document, organization_actions, panel_done, publish_problems
from journeys.admin.diagram import journey_svg, links, step_summary, type_name
from journeys.admin.forms import (
    JourneyAddForm,
    JourneySettingsForm,
    JourneyTestForm,
    NewStepForm,
    StepForm,
    live_journey_choices,
)
from journeys.admin.reports import RUNS_LISTED, ReportRangeForm, listed_runs, run_rows, runs_chart_svg, status_counts
from journeys.fields import field_warnings, seen_fields, step_fields
from journeys.models import Journey, JourneyRun
from journeys.reports import journey_report
from journeys.selectors import recent_event_names
from tenants.admin_scoping import OrgScopedAdminMixin, messages_by_field, problem_lines
from tenants.audit.admin import AuditHistoryAdminMixin
from tenants.middleware import active_organization
from tenants.roles import Capability

SKELETONS = {
    "action": {"parameters": {}},
    "condition": {"branches": []},
    "wait": {"duration_s": 3600},
    "split": {"branches": [{"percent": 50}, {"percent": 50}]},
    "wait_event": {"timeout_s": 86400},
    "jump": {},
    "end": {},
}
# Each button's service and what it says once done, or when refused; which states allow it is
# Journey.ALLOWED_FROM (a copy can be made of any journey).
TRANSITIONS = {
    "publish": (services.journey_publish, gettext_lazy("%(journey)s published: it is live.")),
    "pause": (services.journey_pause, gettext_lazy("%(journey)s paused: its runs are held.")),
    "resume": (services.journey_resume, gettext_lazy("%(journey)s resumed.")),
    "stop": (services.journey_stop, gettext_lazy("%(journey)s stopped: its runs ended.")),
    "close": (services.journey_close, gettext_lazy("%(journey)s archived.")),
    "new-version": (services.journey_new_version, gettext_lazy("%(journey)s copied into a new draft version.")),
    "duplicate": (services.journey_duplicate, gettext_lazy("%(journey)s duplicated into a new draft.")),
}
NOT_DONE = {
    "publish": gettext_lazy("Not published: %(problems)s"),
    "pause": gettext_lazy("Not paused: %(problems)s"),
    "resume": gettext_lazy("Not resumed: %(problems)s"),
    "stop": gettext_lazy("Not stopped: %(problems)s"),
    "close": gettext_lazy("Not archived: %(problems)s"),
    "new-version": gettext_lazy("No new version made: %(problems)s"),
    "duplicate": gettext_lazy("Not duplicated: %(problems)s"),
}
LABELS = {
    "publish": gettext_lazy("Publish"), "pause": gettext_lazy("Pause"), "resume": gettext_lazy("Resume"),
    "stop": gettext_lazy("Stop"), "close": gettext_lazy("Archive"), "new-version": gettext_lazy("New version"),
    "duplicate": gettext_lazy("Duplicate"),
}  # fmt: skip


def consequence(journey: Journey, verb: str, open_runs: int) -> str:
    """What a button does, said before it is pressed (the confirmation asks for it)."""
    values = {"count": open_runs, "event": journey.entry_event}
    if verb == "publish":
        said = _("It goes live: from now on each “%(event)s” event starts a run.") % values
        if journey.previous_id:
            said += " " + _("Version %(version)s is archived.") % {"version": journey.version - 1}
        return said
    if verb == "pause":
        return (
            ngettext(
                "%(count)s open run will be held where they are, and no new run starts until you resume.",
                "%(count)s open runs will be held where they are, and no new run starts until you resume.",
                open_runs,
            )
            % values
        )
    if verb == "resume":
        return (
            ngettext(
                "%(count)s open run will go on, and “%(event)s” events start runs again.",
                "%(count)s open runs will go on, and “%(event)s” events start runs again.",
                open_runs,
            )
            % values
        )
    if verb == "stop":
        return (
            ngettext(
                "%(count)s open run will end as stopped, and their calls not yet sent are cancelled. "
                "A stopped journey cannot go live again; it can be duplicated into a new draft.",
                "%(count)s open runs will end as stopped, and their calls not yet sent are cancelled. "
                "A stopped journey cannot go live again; it can be duplicated into a new draft.",
                open_runs,
            )
            % values
        )
    if verb == "close":
        return _(
            "It is archived for good: it can no longer be edited, published or resumed. Its runs and report "
            "stay, and it can still be duplicated into a new draft."
        )
    if verb == "new-version":
        return _("A draft copy, version %(version)s, is made to edit; this version runs on until it is published.") % {
            "version": journey.version + 1
        }
    return _("A new draft, “%(name)s”, is made with the same steps and settings; it has no runs.") % {
        "name": services.copy_name(journey.name)
    }


def transition_refused(verb: str, problems: list[str]) -> str:
    return NOT_DONE[verb] % {"problems": " · ".join(problems)}


def not_confirmed(journey: Journey, verb: str) -> str:
    return _("Nothing was done: confirm first. %(consequence)s") % {"consequence": consequence(journey, verb, 0)}


def created_message(journey: Journey) -> str:
    return _("Journey “%(name)s” created. Now drag its steps onto the canvas.") % {"name": journey.name}


def deleted_message(key: str) -> str:
    return _("Step %(key)s deleted. Steps that led to it now lead nowhere: fix them.") % {"key": key}


def _problems(exc: ValidationError | Conflict) -> dict[str, list[str]]:
    if isinstance(exc, Conflict):
        return {NON_FIELD_ERRORS: [exc.message]}
    return messages_by_field(exc)


def transition_buttons(journey: Journey, has_problems: bool) -> list[dict[str, str]]:
    """The buttons this journey's status allows, each with what it will do; Publish held while problems remain."""
    open_runs = JourneyRun.objects.filter(journey=journey, status__in=JourneyRun.OPEN).count()
    verbs = [verb for verb in Journey.ALLOWED_FROM if journey.allows(verb)] + ["duplicate"]
    return [
        {"verb": verb, "label": LABELS[verb], "consequence": consequence(journey, verb, open_runs),
         "blocked": _("Fix the problems listed below first.") if verb == "publish" and has_problems else ""}
        for verb in verbs
    ]  # fmt: skip


@admin.register(Journey)
class JourneyAdmin(AuditHistoryAdminMixin, CanvasViews, OrgScopedAdminMixin, admin.ModelAdmin):
    """Journeys: the list, and for each one a page with its settings, steps, diagram and buttons."""

    view_capability = Capability.VIEW_JOURNEYS
    change_capability = Capability.EDIT_JOURNEYS
    list_display = ["name", "version", "status", "entry_event", "reentry", "updated_at"]
    list_filter = ["status", "reentry"]
    search_fields = ["name", "entry_event"]
    actions = None

    # --- helpers ------------------------------------------------------------------------
    def _journey(self, request: HttpRequest, object_id: str) -> Journey:
        journey = self.get_object(request, unquote(object_id))
        if journey is None:
            raise Http404(_("No such journey in your organization."))
        return journey

    def _require_edit(self, request: HttpRequest) -> None:
        if not self.has_change_permission(request):
            raise PermissionDenied

    def _url(self, view: str, journey: Journey, *args: Any) -> str:
        return reverse(f"admin:journeys_journey_{view}", args=[journey.pk, *args])

    def _actions(self, request: HttpRequest, journey: Journey) -> list[Action]:
        return list(Action.objects.filter(organization=journey.organization, status=Action.Status.ACTIVE))

    def _names(self, journey: Journey) -> dict[int, str]:
        return dict(Action.objects.filter(organization=journey.organization).values_list("pk", "name"))

    def _render(self, request: HttpRequest, template: str, journey: Journey | None, title: str, **context: Any):
        return TemplateResponse(
            request,
            f"admin/journeys/journey/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts, "title": title, "journey": journey,
                "can_edit": self.has_change_permission(request),
                **context,
            },
        )  # fmt: skip

    def _save(self, request: HttpRequest, journey: Journey, data: dict) -> dict[str, list[str]]:
        try:
            services.journey_update(journey=journey, data=data)
        except (ValidationError, Conflict) as exc:
            return _problems(exc)
        return {}

    # --- Django admin entry points ------------------------------------------------------
    def has_delete_permission(self, request: HttpRequest, obj: Journey | None = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or obj.status == Journey.Status.DRAFT)

    def delete_model(self, request: HttpRequest, obj: Journey) -> None:
        services.journey_delete(journey=obj)

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/steps/new/", wrap(self.new_step_view), name="journeys_journey_new_step"),
            path("<path:object_id>/steps/<str:key>/", wrap(self.step_view), name="journeys_journey_step"),
            path("<path:object_id>/do/<str:verb>/", wrap(self.transition_view), name="journeys_journey_transition"),
            path("<path:object_id>/test/", wrap(self.test_view), name="journeys_journey_test"),
            path("<path:object_id>/canvas/", wrap(self.canvas_view), name="journeys_journey_canvas"),
            path("<path:object_id>/report/", wrap(self.report_view), name="journeys_journey_report"),
            *super().get_urls(),
        ]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        self._require_edit(request)
        organization = active_organization(request)
        form = JourneyAddForm(request.POST or None, organization=organization)
        if request.method == "POST" and form.is_valid():
            if organization is None:
                form.add_error(None, _("Choose an organization first (the switcher at the top)."))
            else:
                try:
                    journey = services.journey_create(organization=organization, data=form.cleaned_data)
                except ValidationError as exc:
                    for field, problems in _problems(exc).items():
                        form.add_error(field if field in form.fields else None, problems)
                else:
                    messages.success(request, created_message(journey))
                    return HttpResponseRedirect(self._url("change", journey))
        return self._render(request, "add.html", None, _("New journey"), form=form)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None):
        journey = self._journey(request, object_id)
        keys = [s["key"] for s in journey.steps]
        editable = journey.status == Journey.Status.DRAFT and self.has_change_permission(request)
        initial = {f: getattr(journey, f) for f in ("name", "description", "entry_event", "reentry", "start",
                                                     "max_run_days")}  # fmt: skip
        initial["exit_events"] = ", ".join(journey.exit_events)
        audience = journey.audience or {}
        initial |= {f"audience_{name}": audience.get(name) for name in ("segment", "rate_per_s", "start_at", "repeat")}
        form = JourneySettingsForm(request.POST if editable and request.method == "POST" else None,
                                   initial=initial, step_keys=keys, organization=journey.organization)  # fmt: skip
        if not editable:
            for field in form.fields.values():
                field.disabled = True
        if editable and request.method == "POST" and form.is_valid():
            problems = self._save(request, journey, form.cleaned_data)
            if not problems:
                messages.success(request, _("Saved."))
                return HttpResponseRedirect(self._url("change", journey))
            for field, found in problems.items():
                form.add_error(field if field in form.fields else None, found)
        actions = organization_actions(journey)  # read once: names, the checklist and the canvas's palette
        names = {a.pk: a.name for a in actions}
        publishing = publish_problems(journey, actions)
        jumps = {s.get("journey") for s in journey.steps if s.get("type") == "jump"}
        jumps = {j for j in jumps if type(j) is int}  # a draft may hold anything there until it is fixed
        targets = Journey.objects.filter(organization_id=journey.organization_id, pk__in=jumps)
        journey_names = {j.pk: str(j) for j in targets} if jumps else {}
        steps = [
            {"key": s["key"], "type": type_name(s["type"]), "summary": step_summary(s, names, journey_names),
             "links": links(s), "url": self._url("step", journey, s["key"])}
            for s in journey.steps
        ]  # fmt: skip
        buttons = transition_buttons(journey, bool(publishing)) if self.has_change_permission(request) else []
        counts = None if journey.status == Journey.Status.DRAFT else journey_report(journey=journey)["steps"]
        return self._render(
            request, "page.html", journey, str(journey), form=form, editable=editable, steps=steps,
            canvas=canvas_document(journey, editable=editable, counts=counts, actions=actions, problems=publishing),
            publishing=sorted(publishing.items()), buttons=buttons,
            warnings=sorted(field_warnings(journey, seen_fields(journey)).items()),
            diagram=mark_safe(journey_svg(journey.steps, journey.start, names)),  # noqa: S308  (escaped inside)
        )  # fmt: skip

    def new_step_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._require_edit(request)
        journey = self._journey(request, object_id)
        form = NewStepForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            key, kind = form.cleaned_data["key"], form.cleaned_data["type"]
            if any(s["key"] == key for s in journey.steps):
                form.add_error("key", _("Another step of this journey has this name."))
            else:
                data = {"steps": [*journey.steps, {"key": key, "type": kind, **SKELETONS[kind]}]}
                if not journey.start:
                    data["start"] = key
                problems = self._save(request, journey, data)
                if not problems:
                    return HttpResponseRedirect(self._url("step", journey, key))
                form.add_error(None, problem_lines(problems))
        title = _("New step in %(journey)s") % {"journey": journey}
        return self._render(request, "new_step.html", journey, title, form=form)

    def step_view(self, request: HttpRequest, object_id: str, key: str) -> HttpResponse:
        journey = self._journey(request, object_id)
        step = next((s for s in journey.steps if s["key"] == key), None)
        if step is None:
            raise Http404(_("No such step in this journey."))
        editable = journey.status == Journey.Status.DRAFT and self.has_change_permission(request)
        keys = [s["key"] for s in journey.steps]
        actions = self._actions(request, journey)
        if request.method == "POST" and not editable:
            raise PermissionDenied
        panel = request.GET.get("panel") == "1"  # the canvas's side panel: the form alone, saved in place
        if request.method == "POST" and "_delete" in request.POST:
            remaining = [s for s in journey.steps if s["key"] != key]
            data = {"steps": remaining, **({"start": ""} if journey.start == key else {})}
            problems = self._save(request, journey, data)
            if not problems and panel:
                return panel_done(_("Step %(key)s deleted.") % {"key": key})
            if not problems:
                messages.success(request, deleted_message(key))
                return HttpResponseRedirect(self._url("change", journey))
            messages.error(request, "; ".join(problem_lines(problems)))
        bound = request.method == "POST" and "_delete" not in request.POST
        names = recent_event_names(journey.organization) if step["type"] == "wait_event" else []
        form = StepForm(request.POST if bound else None, step=step, keys=keys, actions=actions,
                        journeys=live_journey_choices(journey), event_names=names)  # fmt: skip
        if not editable:
            for field in form.fields.values():
                field.disabled = True
        if bound and "_choose_action" not in request.POST and form.is_valid():
            new = form.to_step()
            problems = self._save(request, journey, {"steps": [new if s["key"] == key else s for s in journey.steps]})
            if not problems and panel:
                return panel_done(_("Step %(key)s saved.") % {"key": key})
            if not problems:
                messages.success(request, _("Step %(key)s saved.") % {"key": key})
                return HttpResponseRedirect(self._url("change", journey))
            form.attach(problems)
        parameters = getattr(form, "parameters", [])
        fields, warnings = step_fields(journey, key)
        return self._render(
            request, "step_panel.html" if panel else "step.html", journey,
            _("Step %(key)s (%(type)s)") % {"key": key, "type": type_name(step["type"])}, form=form,
            step=step, panel_url=request.get_full_path(),
            editable=editable, parameters=parameters, fields=fields, warnings=warnings,
        )  # fmt: skip

    def transition_view(self, request: HttpRequest, object_id: str, verb: str) -> HttpResponse:
        self._require_edit(request)
        if request.method != "POST" or verb not in TRANSITIONS:
            raise Http404
        journey = self._journey(request, object_id)
        service, done = TRANSITIONS[verb]
        if request.POST.get("confirm") != "yes":  # only the confirmation, which says what it does, acts
            messages.error(request, not_confirmed(journey, verb))
            return HttpResponseRedirect(self._url("change", journey))
        try:
            result = service(journey=journey)
        except (ValidationError, Conflict) as exc:
            lines = problem_lines(_problems(exc))
            messages.error(request, transition_refused(verb, lines))
            return HttpResponseRedirect(self._url("change", journey))
        messages.success(request, done % {"journey": journey})
        return HttpResponseRedirect(self._url("change", result))

    def test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._require_edit(request)
        journey = self._journey(request, object_id)
        form = JourneyTestForm(request.POST or None)
        answer, problems = None, []
        if request.method == "POST" and form.is_valid():
            try:
                sees_bodies = self._can(request, Capability.VIEW_INVOCATION_BODIES)
                answer = services.journey_test(journey=journey, sees_bodies=sees_bodies, **form.cleaned_data)
            except ValidationError as exc:
                problems = problem_lines(_problems(exc))
        return self._render(request, "test.html", journey, _("Test %(journey)s") % {"journey": journey}, form=form,
                            answer=answer, problems=problems)  # fmt: skip

    def report_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        journey = self._journey(request, object_id)
        window = ReportRangeForm(request.GET or None)
        since, until = window.window()
        report = journey_report(journey=journey, since=since, until=until)
        step = window.cleaned_data.get("step") if window.is_bound and window.is_valid() else ""
        listed = listed_runs(journey, since, until, step)
        counts = {s["key"]: s for s in report["steps"]}
        return self._render(
            request, "report.html", journey, _("Report: %(journey)s") % {"journey": journey}, report=report,
            window=window, step=step, statuses=status_counts(report["runs"]),
            runs=run_rows(listed, sees_destinations=self._can(request, Capability.VIEW_DESTINATIONS)),
            listed_max=RUNS_LISTED, canvas=canvas_document(journey, editable=False, counts=report["steps"]),
            chart=mark_safe(runs_chart_svg(report["runs_per_hour"])),  # noqa: S308  (escaped inside)
            diagram=mark_safe(journey_svg(journey.steps, journey.start, self._names(journey), counts)),  # noqa: S308
        )  # fmt: skip
