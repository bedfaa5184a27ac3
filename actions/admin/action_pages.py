"""The action's extra admin pages: test request, duplicate, export, import, new from a template or a sample."""

import json
from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.text import slugify
from django.utils.translation import gettext as _

from actions.admin.action_page_forms import FromTemplateForm, ImportForm, InferForm, ParameterValuesForm
from actions.models import Action
from actions.selectors import action_destination
from actions.services import actions as services
from actions.services import samples
from actions.services import templates as catalogue
from config.common.shown_once import shown_once
from tenants.admin_scoping import form_organization, messages_by_field, problem_lines


class ActionPagesMixin:
    """The pages ActionAdmin adds to Django's own (its URLs and views), each through the same services as the API."""

    # --- the extra pages
    def get_urls(self) -> list:
        def name(view: str) -> str:
            return f"{self.opts.app_label}_{self.opts.model_name}_{view}"

        wrap = self.admin_site.admin_view
        return [
            path("infer/", wrap(self.infer_view), name=name("infer")),
            path("from-template/", wrap(self.templates_view), name=name("templates")),
            path("from-template/<slug:key>/", wrap(self.from_template_view), name=name("from_template")),
            path("import/", wrap(self.import_view), name=name("import")),
            path("<path:object_id>/test/", wrap(self.test_view), name=name("test")),
            path("<path:object_id>/duplicate/", wrap(self.duplicate_view), name=name("duplicate")),
            path("<path:object_id>/export/", wrap(self.export_view), name=name("export")),
            *super().get_urls(),
        ]

    def _require_manage(self, request: HttpRequest) -> None:
        if not self.has_change_permission(request):
            raise PermissionDenied

    def _scoped_object(self, request: HttpRequest, object_id: str) -> tuple[Action | None, HttpResponse | None]:
        action = self.get_object(request, unquote(object_id))
        if action is None:
            return None, self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return action, None

    def _change_url(self, action: Action) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[action.pk])

    def _page(self, request: HttpRequest, template: str, title: str, **context: Any) -> TemplateResponse:
        return TemplateResponse(
            request,
            f"admin/actions/action/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "app_label": self.opts.app_label,
                "title": title,
                "media": self.media,
                **context,
            },
        )

    def test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._require_manage(request)
        action, redirect = self._scoped_object(request, object_id)
        if redirect is not None:
            return redirect
        form = ParameterValuesForm(action, request.POST if request.method == "POST" else None)
        result = None
        if request.method == "POST" and form.is_valid():
            try:
                result = services.action_test(action=action, values=form.values())
            except ValidationError as exc:
                form.attach(exc)
        return self._page(
            request,
            "test_request.html",
            _("Test request: %(name)s") % {"name": action.name},
            original=action,
            form=form,
            host=action_destination(action=action),
            result=result,
            shown=_shown_result(result) if result is not None else None,
        )

    def duplicate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._require_manage(request)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        action, redirect = self._scoped_object(request, object_id)
        if redirect is not None:
            return redirect
        duplicate = services.action_duplicate(action=action, user=request.user)
        self.log_addition(request, duplicate, f"Duplicated from {action.name}.")
        self.message_user(
            request,
            _("“%(copy)s” is a draft copy of “%(original)s”, with the same secrets.")
            % {"copy": duplicate.name, "original": action.name},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(self._change_url(duplicate))

    def export_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._require_manage(request)
        action, redirect = self._scoped_object(request, object_id)
        if redirect is not None:
            return redirect
        response = JsonResponse(
            services.action_export(action=action), json_dumps_params={"indent": 2, "ensure_ascii": False}
        )
        response["Content-Disposition"] = f'attachment; filename="{slugify(action.name) or "action"}.json"'
        return response

    def import_view(self, request: HttpRequest) -> HttpResponse:
        self._require_manage(request)
        with_organization = request.user.is_superuser
        if request.method != "POST":
            form = ImportForm(with_organization=with_organization)
        else:
            form = ImportForm(request.POST, request.FILES, with_organization=with_organization)
            if form.is_valid():
                try:
                    imported = services.action_import(
                        organization=form_organization(request, form),
                        data=form.cleaned_data["data"],
                        user=request.user,
                    )
                except ValidationError as exc:
                    for line in problem_lines(messages_by_field(exc)):
                        form.add_error(None, line)
                else:
                    self.log_addition(request, imported, "Imported from JSON.")
                    self.message_user(
                        request,
                        _("Imported “%(name)s” as a draft. Enter its secrets before making it active.")
                        % {"name": imported.name},
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(self._change_url(imported))
        return self._page(request, "import.html", _("Import an action from JSON"), form=form)

    def templates_view(self, request: HttpRequest) -> HttpResponse:
        self._require_manage(request)
        return self._page(
            request, "templates.html", _("New action from a template"), templates=list(catalogue.TEMPLATES.values())
        )

    def show_generated_secret(self, request: HttpRequest, action: Action) -> None:
        """A signing secret the save generated, shown this once: the receiving system needs it to verify."""
        if generated := getattr(action, "generated_signing_secret", None):
            sentence = _("Copy this signing secret into the receiving system now; it will not be shown again:")
            self.message_user(request, shown_once(sentence, generated), messages.WARNING)

    def from_template_view(self, request: HttpRequest, key: str) -> HttpResponse:
        self._require_manage(request)
        template = catalogue.TEMPLATES.get(key)
        if template is None:
            raise Http404(_("No such action template."))
        with_organization = request.user.is_superuser
        form = FromTemplateForm(template, request.POST or None, with_organization=with_organization)
        if request.method == "POST" and form.is_valid():
            try:
                action = catalogue.action_from_template(
                    organization=form_organization(request, form), key=key,
                    credentials=form.credentials(), name=form.cleaned_data["name"],
                    status=form.cleaned_data["status"], user=request.user,
                )  # fmt: skip
            except ValidationError as exc:
                form.attach(exc)
            else:
                self.log_addition(request, action, f"Created from the template {template.name}.")
                self.message_user(
                    request,
                    _(
                        "Created “%(name)s” from the %(provider)s template. Send a test request to check "
                        "the credentials; every field stays editable below."
                    )
                    % {"name": action.name, "provider": template.provider},
                    messages.SUCCESS,
                )
                self.show_generated_secret(request, action)
                return HttpResponseRedirect(self._change_url(action))
        title = _("New action: %(name)s") % {"name": template.name}
        return self._page(request, "from_template.html", title, form=form, chosen=template)

    def infer_view(self, request: HttpRequest) -> HttpResponse:
        self._require_manage(request)
        with_organization = request.user.is_superuser
        if request.method != "POST":
            form = InferForm(with_organization=with_organization)
            return self._page(request, "infer.html", _("New action from a sample payload"), form=form)
        form = InferForm(request.POST, with_organization=with_organization)
        step = request.POST.get("step", "fields")
        chosen = request.POST.getlist("parameters")
        fields: list[dict] = []
        if form.is_valid():
            sample, sample_response = form.cleaned_data["sample"], form.cleaned_data["sample_response"]
            if sample is None and sample_response is None:
                form.add_error("sample", _("Paste a sample body, a sample response, or both."))
            elif sample is not None:
                try:
                    samples.body_from_sample(sample, [])
                    fields = samples.sample_fields(sample)
                except ValidationError as exc:
                    form.add_error("sample", problem_lines(messages_by_field(exc)))
            if step == "create" and form.is_valid():
                created = self._create_from_sample(request, form, chosen)
                if created is not None:
                    return HttpResponseRedirect(self._change_url(created))
        return self._page(
            request,
            "infer.html",
            _("New action from a sample payload"),
            form=form,
            fields=fields,
            chosen=chosen,
            show_fields=not (form.has_error("sample") or form.has_error("sample_response")),
        )

    def _create_from_sample(self, request: HttpRequest, form: InferForm, chosen: list[str]) -> Action | None:
        cleaned = form.cleaned_data
        for name in ("organization", "name", "url") if "organization" in form.fields else ("name", "url"):
            if not cleaned.get(name):
                form.add_error(name, _("Needed to create the action."))
        if form.errors:
            return None
        data: dict[str, Any] = {
            "name": cleaned["name"],
            "url": cleaned["url"],
            "method": cleaned["method"] or Action.Method.POST,
            "status": Action.Status.DRAFT,
        }
        try:
            if cleaned["sample"] is not None:
                data["body"], data["parameters"] = samples.body_from_sample(cleaned["sample"], chosen)
            if cleaned["sample_response"] is not None:
                data["response_schema"] = samples.schema_from_sample(cleaned["sample_response"])
            created = services.action_create(
                organization=form_organization(request, form), data=data, user=request.user
            )
        except ValidationError as exc:
            where = {"body": "sample", "response_schema": "sample_response", "name": "name", "url": "url"}
            for key, messages_ in messages_by_field(exc).items():
                field = where.get(key, key if key in form.fields and key != "parameters" else None)
                for message in messages_:
                    form.add_error(field, message if field else f"{key}: {message}")
            return None
        self.log_addition(request, created, "Created from a sample payload.")
        self.message_user(
            request,
            _("Created the draft “%(name)s”. Check its headers and authentication, then test it.")
            % {"name": created.name},
            messages.SUCCESS,
        )
        return created


def _pretty(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, TypeError):
        return text


def _shown_result(result: Any) -> dict[str, Any]:
    """The call's outcome for the page; the service has already masked every secret."""
    request = result.request or {}
    response_body = (
        json.dumps(result.response_json, indent=2, ensure_ascii=False)
        if result.response_json is not None
        else result.response_body
    )
    return {
        "outcome": result.outcome,
        "error": result.error,
        "method": request.get("method", ""),
        "url": request.get("url", ""),
        "request_headers": request.get("headers", []),
        "request_body": _pretty(request.get("body")),
        "status_code": result.status_code,
        "response_headers": sorted(result.response_headers.items()),
        "response_body": response_body,
        "truncated": result.truncated,
        "latency_ms": result.latency_ms,
    }
