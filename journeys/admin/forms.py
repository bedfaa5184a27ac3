"""Forms of the journey builder: a marketer edits steps field by field, never JSON.

Each form turns its fields into one step of the journey document and back; the services
check and save, and their problems (`steps[sms].parameters.phone`) come back next to the
field they name.
"""

import json
import re
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from actions.admin.send_window_fields import (
    SEND_WINDOW_PROBLEM_FIELDS,
    send_window_fields,
    send_window_from,
    send_window_initial,
)
from actions.models import Action
from config.common.identifiers import NAME
from config.common.json_values import unstorable
from journeys.models import Journey, Segment
from journeys.selectors import recent_event_names
from tenants.models import Organization

STEP_TYPES = [
    ("action", gettext_lazy("Action: call one of your actions")),
    ("condition", gettext_lazy("Condition: choose a path by an expression")),
    ("wait", gettext_lazy("Wait: pause for a time")),
    ("split", gettext_lazy("Split: share customers between paths by percent")),
    ("wait_event", gettext_lazy("Wait for an event: until the customer does something, or a timeout")),
    ("jump", gettext_lazy("Jump: the customer goes on in another live journey")),
    ("end", gettext_lazy("End: the run is over")),
]
EXPRESSION_HELP = gettext_lazy(
    'An expression, e.g. profile.first_name or "Hi " + profile.first_name (text goes in quotes).'
)
EVENT_NAMES = "journey-entry-events"  # the id of the entry event's list of names
BRANCHES = 4


def expression_field(label: str, required: bool = False, help_text: str = EXPRESSION_HELP) -> forms.CharField:
    return forms.CharField(
        label=label, required=required, help_text=help_text,
        widget=forms.TextInput(attrs={"class": "vTextField", "spellcheck": "false", "list": "journey-fields"}),
    )  # fmt: skip


class ListedTextInput(forms.TextInput):
    """A text input with a <datalist> of suggestions (`names`): the browser offers them as one types."""

    def __init__(self, attrs: dict | None = None, list_id: str = EVENT_NAMES):
        super().__init__({**(attrs or {}), "list": list_id})
        self.list_id, self.names = list_id, []

    def render(self, name: str, value: Any, attrs: dict | None = None, renderer: Any = None) -> str:
        options = format_html_join("", '<option value="{}"></option>', ((n,) for n in self.names))
        datalist = format_html('<datalist id="{}">{}</datalist>', self.list_id, options)
        return format_html("{}{}", super().render(name, value, attrs, renderer), datalist)


class JourneySettingsForm(forms.Form):
    """A journey's settings on its page: the entry event offers the event names `organization` has
    received; the start, the steps `step_keys`."""

    name = forms.CharField(
        label=gettext_lazy("Name"), max_length=200, widget=forms.TextInput(attrs={"class": "vTextField"})
    )
    description = forms.CharField(
        label=gettext_lazy("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60})
    )
    entry_event = forms.CharField(
        label=gettext_lazy("Entry event"), max_length=200, required=False,
        help_text=gettext_lazy("The name of the event that starts a run, e.g. cart_abandoned."),
        widget=ListedTextInput(attrs={"class": "vTextField", "autocomplete": "off"}),
    )  # fmt: skip
    reentry = forms.ChoiceField(
        label=gettext_lazy("Reentry"), choices=Journey.Reentry.choices, initial=Journey.Reentry.AFTER_EXIT,
        help_text=gettext_lazy("Whether a customer may go through the journey again."),
    )  # fmt: skip
    exit_events = forms.CharField(
        label=gettext_lazy("Exit events"), required=False, max_length=4000,
        help_text=gettext_lazy("Event names, separated by commas, that end a customer's run here, e.g. order_placed."),
        widget=forms.TextInput(attrs={"class": "vTextField", "autocomplete": "off"}),
    )  # fmt: skip
    audience_segment = forms.ModelChoiceField(
        label=gettext_lazy("Or an audience: segment"),
        queryset=Segment.objects.none(),
        required=False,
        help_text=gettext_lazy("Instead of an entry event: every profile of this segment gets a run."),
    )
    audience_rate_per_s = forms.IntegerField(
        label=gettext_lazy("Profiles a second"), min_value=1, max_value=20000, initial=100, required=False
    )
    audience_start_at = forms.DateTimeField(
        label=gettext_lazy("Start at"), required=False, help_text=gettext_lazy("Empty: when the journey is published.")
    )
    audience_repeat = forms.ChoiceField(
        label=gettext_lazy("Repeat"), required=False, initial="none",
        choices=[("none", gettext_lazy("once")), ("daily", gettext_lazy("every day")),
                 ("weekly", gettext_lazy("every week"))],
    )  # fmt: skip
    max_run_days = forms.IntegerField(
        label=gettext_lazy("Longest run (days)"), min_value=1, max_value=3650, initial=91, required=False,
        help_text=gettext_lazy("A run still open this many days after it started ends as timed out."),
    )  # fmt: skip
    start = forms.ChoiceField(
        label=gettext_lazy("Start"), required=False, help_text=gettext_lazy("The first step of every run.")
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        segment = cleaned.get("audience_segment")
        cleaned["audience"] = None if segment is None else {
            "segment": segment.pk, "rate_per_s": cleaned.get("audience_rate_per_s") or 100,
            "start_at": cleaned["audience_start_at"].isoformat() if cleaned.get("audience_start_at") else None,
            "repeat": cleaned.get("audience_repeat") or "none",
        }  # fmt: skip
        return cleaned

    def clean_max_run_days(self) -> int:
        return self.cleaned_data["max_run_days"] or Journey._meta.get_field("max_run_days").default

    def clean_exit_events(self) -> list[str]:
        return [name.strip() for name in self.cleaned_data["exit_events"].split(",") if name.strip()]

    def __init__(self, *args: Any, step_keys: list[str] = (), organization: Organization | None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["entry_event"].widget.names = recent_event_names(organization)
        self.fields["audience_segment"].queryset = Segment.objects.filter(organization=organization)
        if "start" in self.fields:
            self.fields["start"].choices = [("", "---------"), *[(k, k) for k in step_keys]]


class JourneyAddForm(JourneySettingsForm):
    """The first form of a journey: no start yet, since no step exists (the first step added becomes it)."""

    start = None


class NewStepForm(forms.Form):
    key = forms.RegexField(
        label=gettext_lazy("Key"), regex=NAME, max_length=64,
        help_text=gettext_lazy("A short name for the step: letters, digits and _, e.g. send_sms. Expressions use it."),
        error_messages={"invalid": gettext_lazy("Use letters, digits and _ only, starting with a letter.")},
    )  # fmt: skip
    type = forms.ChoiceField(label=gettext_lazy("Type"), choices=STEP_TYPES, widget=forms.RadioSelect)


def _target(label: str, keys: list[str], required: bool, help_text: str) -> forms.ChoiceField:
    blank = _("--------- (none)") if not required else "---------"
    return forms.ChoiceField(
        label=label, required=False, help_text=help_text, choices=[("", blank), *[(k, k) for k in keys]]
    )


def live_journey_choices(journey: Journey) -> list[tuple[int, str]]:
    """The live journeys a jump step of `journey` may lead to: its organization's, itself excepted."""
    live = Journey.objects.filter(organization_id=journey.organization_id, status=Journey.Status.LIVE)
    return [(j.pk, str(j)) for j in live.exclude(pk=journey.pk).order_by("name")]


class StepForm(forms.Form):
    """The fields of one step, by its type. `actions` are the organization's active actions."""

    def __init__(
        self, *args: Any, step: dict, keys: list[str], actions: list[Action], journeys: list = (),
        event_names: list[str] = (), **kwargs: Any,
    ):  # fmt: skip
        self.step, self.kind = step, step["type"]
        super().__init__(*args, initial=self._initial(step), **kwargs)
        others = [k for k in keys if k != step["key"]]
        # Branches drawn on the canvas past the form's usual four keep a row each, so a save keeps them.
        drawn = step.get("branches") if isinstance(step.get("branches"), list) else []
        self.branch_count = max(BRANCHES, len(drawn))
        if self.kind == "action":
            self.fields["action"] = forms.ModelChoiceField(
                queryset=Action.objects.filter(pk__in=[a.pk for a in actions]), required=False, label=_("Action"),
                help_text=_("Only active actions of your organization are listed."),
            )  # fmt: skip
            chosen = self._chosen_action(actions)
            self.parameters = chosen.parameters if chosen else []
            for parameter in self.parameters:
                needed = (
                    _("required") if parameter.get("required", True) and parameter.get("default") is None
                    else _("optional")
                )  # fmt: skip
                help_text = (parameter.get("description") or "") + f" ({parameter.get('type', 'string')}, {needed})"
                self.fields[f"param__{parameter['name']}"] = expression_field(parameter["name"], help_text=help_text)
            self.fields["next"] = _target(_("then go to"), others, True, _("The step after a successful call."))
            self.fields["on_error"] = _target(_("on error go to"), others, False, _("When the call fails."))
            self.fields["on_timeout"] = _target(
                _("on timeout go to"), others, False, _("When the call times out (else the error path).")
            )
            self.fields.update(send_window_fields(override=True))
            self.fields["on_capped"] = _target(
                _("when capped go to"), others, False, _("When a frequency cap holds the call back (else then).")
            )
        elif self.kind == "condition":
            for number in range(self.branch_count):
                word = _("If") if number == 0 else _("Else if")
                self.fields[f"branch{number}_expression"] = expression_field(
                    word, help_text=_("An expression that is true or false, e.g. event.data.total > 100.0")
                    if number == 0 else "",
                )  # fmt: skip
                self.fields[f"branch{number}_next"] = _target(_("go to"), others, False, "")
            self.fields["else"] = _target(_("otherwise go to"), others, True, _("When no branch above is true."))
            self.fields["on_error"] = _target(_("on error go to"), others, False, _("When an expression fails."))
        elif self.kind == "split":
            for number in range(self.branch_count):
                self.fields[f"branch{number}_percent"] = forms.IntegerField(
                    required=False, min_value=0, max_value=100,
                    label=_("Branch %(number)s (%%)") % {"number": number + 1},
                    help_text=_("The percentages add up to 100, e.g. 50 and 50.") if number == 0 else "",
                )  # fmt: skip
                self.fields[f"branch{number}_next"] = _target(_("go to"), others, False, "")
        elif self.kind == "wait_event":
            self.fields["event"] = forms.CharField(
                label=_("Wait for the event"), max_length=200, required=False,
                help_text=_("Its name, e.g. order_placed; the event is then steps.%(key)s.event.")
                % {"key": step["key"]},
                widget=ListedTextInput(attrs={"class": "vTextField", "autocomplete": "off"}),
            )  # fmt: skip
            self.fields["event"].widget.names = event_names
            self.fields["condition"] = expression_field(
                _("only if"),
                help_text=_("Optional: an expression over event and profile, e.g. event.data.total > 50.0"),
            )
            self.fields["timeout_s"] = forms.IntegerField(
                required=False, min_value=1, label=_("at most (seconds)"), help_text=_("e.g. 86400 for a day.")
            )
            self.fields["next"] = _target(_("when it comes go to"), others, True, "")
            self.fields["on_timeout"] = _target(
                _("on timeout go to"), others, False, _("When the event does not come in time (else the run ends).")
            )
        elif self.kind == "jump":
            self.fields["journey"] = forms.TypedChoiceField(
                label=_("Journey"), coerce=int, required=False, empty_value=None,
                choices=[("", "---------"), *journeys],
                help_text=_("A live journey of your organization; its reentry rule applies. This run then ends."),
            )  # fmt: skip
        elif self.kind == "wait":
            self.fields["duration_s"] = forms.IntegerField(
                required=False, min_value=0, label=_("wait (seconds)"), help_text=_("e.g. 3600 for an hour.")
            )
            self.fields["until"] = expression_field(
                _("or wait until"), help_text=_('Instead of seconds: a time, e.g. now + duration("24h").')
            )
            self.fields["next"] = _target(_("then go to"), others, True, _("The step after the wait."))
            self.fields["on_error"] = _target(_("on error go to"), others, False, _("When the until expression fails."))

    @staticmethod
    def _initial(step: dict) -> dict:
        copied = ("next", "on_error", "on_timeout", "on_capped", "else", "duration_s", "event", "condition",
                  "timeout_s", "journey")  # fmt: skip
        initial = {k: v for k, v in step.items() if k in copied}
        if step.get("until") is not None:
            initial["until"] = step["until"]
        if step.get("action") is not None:
            initial["action"] = step["action"]
        for name, source in (step.get("parameters") or {}).items():
            initial[f"param__{name}"] = source
        initial.update(send_window_initial(step.get("send_window")))
        for number, branch in enumerate(step.get("branches") or []):
            initial[f"branch{number}_expression"] = branch.get("expression", "")
            initial[f"branch{number}_percent"] = branch.get("percent")
            initial[f"branch{number}_next"] = branch.get("next", "")
        return initial

    def _chosen_action(self, actions: list[Action]) -> Action | None:
        wanted = self.data.get(self.add_prefix("action")) if self.is_bound else self.initial.get("action")
        try:
            wanted = int(wanted)
        except (TypeError, ValueError):
            return None
        return next((a for a in actions if a.pk == wanted), None)

    def to_step(self) -> dict:
        """The step as the journey document holds it."""
        data, step = self.cleaned_data, {"key": self.step["key"], "type": self.kind}
        if self.kind == "action":
            step["action"] = data["action"].pk if data.get("action") else None
            step["parameters"] = {
                name[len("param__") :]: value for name, value in data.items() if name.startswith("param__") and value
            }
            if window := send_window_from(data):
                step["send_window"] = window
        elif self.kind == "condition":
            step["branches"] = [
                {"expression": data[f"branch{n}_expression"], "next": data[f"branch{n}_next"]}
                for n in range(self.branch_count)
                if data.get(f"branch{n}_expression") or data.get(f"branch{n}_next")
            ]
        elif self.kind == "split":
            step["branches"] = [
                {"percent": data[f"branch{n}_percent"] or 0, "next": data[f"branch{n}_next"]}
                for n in range(self.branch_count)
                if data.get(f"branch{n}_percent") is not None or data.get(f"branch{n}_next")
            ]
        elif self.kind == "wait_event":
            step.update({name: data[name] for name in ("event", "condition", "timeout_s") if data.get(name)})
        elif self.kind == "jump":
            step["journey"] = data.get("journey")
        elif self.kind == "wait":
            if data.get("until"):
                step["until"] = data["until"]
            else:
                step["duration_s"] = data.get("duration_s") if data.get("duration_s") is not None else 0
        for link in ("next", "else", "on_error", "on_timeout", "on_capped"):
            if data.get(link):
                step[link] = data[link]
        return step

    def attach(self, problems: dict[str, list[str]]) -> None:
        """Put each problem the service named next to its field; the rest above the form."""
        prefix = f"steps[{self.step['key']}]"
        for where, messages in problems.items():
            field = None
            if where.startswith(prefix):
                rest = where[len(prefix) :].lstrip(".")
                branch = re.match(r"branches\[(\d+)\]\.(expression|percent|next)$", rest)
                if rest.startswith("parameters."):
                    field = f"param__{rest[len('parameters.') :]}"
                elif branch:
                    field = f"branch{branch.group(1)}_{branch.group(2)}"
                elif rest.startswith("send_window"):
                    field = SEND_WINDOW_PROBLEM_FIELDS.get(rest)
                elif rest in self.fields:
                    field = rest
            for message in messages if isinstance(messages, list) else [messages]:
                if field in self.fields:
                    self.add_error(field, str(message))
                elif where == NON_FIELD_ERRORS or (where.startswith(prefix) and not field):
                    self.add_error(None, str(message))
                else:
                    self.add_error(None, f"{where}: {message}")


class JourneyTestForm(forms.Form):
    profile = forms.CharField(
        label=gettext_lazy("Profile"), initial="{}",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60, "spellcheck": "false"}),
        help_text=gettext_lazy(
            'The customer\'s attributes as JSON, e.g. {"first_name": "Ada", "phone": "+33600000000"}.'
        ),
    )  # fmt: skip
    event = forms.CharField(
        label=gettext_lazy("Event"), initial='{"data": {}}',
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60, "spellcheck": "false"}),
        help_text=gettext_lazy('The event as JSON, e.g. {"data": {"total": 120.5}}.'),
    )  # fmt: skip
    dry_run = forms.BooleanField(
        label=gettext_lazy("Dry run"), required=False, initial=True,
        help_text=gettext_lazy("Send nothing: show what each action would send."),
    )  # fmt: skip
    responses = forms.CharField(
        label=gettext_lazy("Answers (dry run)"), required=False, initial="{}",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60, "spellcheck": "false"}),
        help_text=gettext_lazy(
            'What each action step is answered in a dry run, by step key, e.g. {"sms": {"status": 200, '
            '"body": {"state": "queued"}}}. A step left out gets a sample of its action\'s response schema.'
        ),
    )  # fmt: skip

    def _object(self, name: str) -> dict:
        try:
            value = json.loads(self.cleaned_data[name])
        except (ValueError, RecursionError) as exc:
            raise ValidationError(_("This is not valid JSON: %(error)s") % {"error": exc}) from None
        if problem := unstorable(value):
            raise ValidationError(problem)
        if not isinstance(value, dict):
            raise ValidationError(_('Give a JSON object, in braces: {"name": "value"}.'))
        return value

    def clean_profile(self) -> dict:
        return self._object("profile")

    def clean_event(self) -> dict:
        return self._object("event")

    def clean_responses(self) -> dict:
        if not self.cleaned_data["responses"].strip():
            return {}
        answers = self._object("responses")
        for key, answer in answers.items():
            if not isinstance(answer, dict) or set(answer) - {"status", "body"}:
                raise ValidationError(_('%(key)s: give {"status": 200, "body": {...}}, nothing else.') % {"key": key})
            status = answer.get("status", 200)
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
                raise ValidationError(_("%(key)s: the status is a whole number from 100 to 599.") % {"key": key})
        return answers
