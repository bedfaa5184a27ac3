"""Scoping by construction for the admin: one mixin for every organization-owned model."""

from collections.abc import Callable, Iterable
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.http import HttpRequest

from tenants.middleware import active_organization, active_role
from tenants.roles import Capability, role_can


def _is_org_owned(model: type[models.Model]) -> bool:
    return any(f.name == "organization" for f in model._meta.get_fields())


class OrgScopedAdminMixin:
    """Scopes changelists, change views, foreign-key choices, autocomplete and saving.

    Non-superusers work in their active organization with the role they have there;
    subclasses declare only which capability reads and which writes.
    """

    organization_field = "organization"
    view_capability: Capability = Capability.VIEW_JOURNEYS
    change_capability: Capability = Capability.MANAGE_ACTIONS

    # --- permissions: the role in the active organization, not Django's model permissions
    def _can(self, request: HttpRequest, capability: Capability) -> bool:
        if request.user.is_superuser:
            return True
        return role_can(active_role(request), capability)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._can(request, self.view_capability) or self._can(request, self.change_capability)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self._can(request, self.change_capability)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._can(request, self.change_capability)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._can(request, self.change_capability)

    # --- reads: changelist, change view, delete view, history and autocomplete all use this
    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        organization = active_organization(request)
        if organization is None:
            return queryset.none()
        return queryset.filter(**{self.organization_field: organization})

    # --- choices: only rows of the same organization
    def _scope_choices(self, request: HttpRequest, db_field: models.Field, kwargs: dict) -> None:
        if request.user.is_superuser:
            return
        related = db_field.related_model
        if related is None:
            return
        organization = active_organization(request)
        base = kwargs.get("queryset", related._default_manager.all())
        if _is_org_owned(related):
            kwargs["queryset"] = base.filter(organization=organization)
        elif related._meta.label == "tenants.Organization":
            kwargs["queryset"] = base.filter(pk=getattr(organization, "pk", None))

    def formfield_for_foreignkey(self, db_field: models.Field, request: HttpRequest, **kwargs: Any):
        self._scope_choices(request, db_field, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: models.Field, request: HttpRequest, **kwargs: Any):
        self._scope_choices(request, db_field, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    # --- forms: they judge input with the services, which need the organization and so the request
    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request = request  # a fresh class per call: safe to carry the request
        return form

    # --- writes: the organization is the active one, never a form field
    def get_exclude(self, request: HttpRequest, obj: Any = None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser and self.organization_field == "organization":
            exclude.append("organization")
        return exclude

    def get_list_display(self, request: HttpRequest):
        display = list(super().get_list_display(request))
        if request.user.is_superuser and "organization" not in display:
            display.append("organization")
        return display

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change and not request.user.is_superuser:
            setattr(obj, self.organization_field, active_organization(request))
        super().save_model(request, obj, form, change)


def form_organization(request: HttpRequest | None, form: Any) -> Any:
    """The organization an admin form writes to: its row's own, the one platform staff chose, else the active one."""
    instance = getattr(form, "instance", None)
    if instance is not None and instance.pk:
        return instance.organization
    if request is None:
        return None
    if request.user.is_superuser:
        return form.cleaned_data.get("organization")
    return active_organization(request)


def checked_by_service(form: Any, organization: Any, fields: Iterable[str], validate: Callable[..., Any]) -> Any:
    """Check an admin form's values with the service's own validator, so the admin and the API share one set
    of rules and messages; its errors land on the form's fields. What the validator returned, or None when it
    refused them or no organization is known yet (a field of the form itself failed first)."""
    if organization is None:
        return None
    data = form.cleaned_data
    try:
        return validate(
            organization=organization,
            data={name: data[name] for name in fields if name in data},
            instance=form.instance if form.instance.pk else None,
        )
    except ValidationError as exc:
        for name, errors in exc.message_dict.items():
            if name not in form.errors:  # a field that failed already keeps its first error
                form.add_error(name if name in form.fields else None, errors)
    return None


class ReadOnlyAdminMixin:
    """Rows written only by services (the runtime, the palette): the admin shows, never edits."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def adopt_saved_row(obj: models.Model, saved: models.Model) -> None:
    """Make the admin's unsaved `obj` the row a service saved, so the admin redirects and logs it."""
    for field in type(saved)._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False


def messages_by_field(exc: ValidationError) -> dict[str, list[str]]:
    """A service's ValidationError as {field: [messages]}; one without fields under NON_FIELD_ERRORS."""
    if hasattr(exc, "error_dict"):
        return {field: [m for e in errors for m in e.messages] for field, errors in exc.error_dict.items()}
    return {NON_FIELD_ERRORS: exc.messages}


def problem_lines(problems: dict[str, list[str]]) -> list[str]:
    """One line per problem, named by its field unless it has none."""
    return [
        message if key == NON_FIELD_ERRORS else f"{key}: {message}"
        for key, messages in problems.items()
        for message in messages
    ]
