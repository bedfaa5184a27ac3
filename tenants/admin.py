from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from config.common.exceptions import Conflict
from config.common.shown_once import shown_once
from tenants.admin_scoping import OrgScopedAdminMixin, adopt_saved_row
from tenants.audit.admin import AuditHistoryAdminMixin  # also registers the audit trail's own page
from tenants.middleware import active_organization
from tenants.models import ApiKey, Invitation, Membership, Organization
from tenants.organization_form import OrganizationForm
from tenants.roles import Capability, Scope
from tenants.selectors import organizations_for_user
from tenants.services import (
    api_key_create,
    api_key_revoke,
    invitation_check_invitee,
    invitation_create,
    invitation_revoke,
    membership_add,
    membership_change_role,
    membership_ensure_admin_remains,
    membership_remove,
)


@admin.register(Organization)
class OrganizationAdmin(AuditHistoryAdminMixin, admin.ModelAdmin):
    form = OrganizationForm  # checks the default time zone
    list_display = ["name", "slug", "is_active", "allow_http"]
    search_fields = ["name", "slug"]
    list_filter = ["is_active", "allow_http"]

    def get_queryset(self, request: HttpRequest):
        if request.user.is_superuser:
            return super().get_queryset(request)
        return organizations_for_user(user=request.user)

    # Organizations are created and configured by platform staff (superusers).
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_authenticated

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_authenticated

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser


class MembershipAddForm(forms.ModelForm):
    """Platform staff only: they add a user at once. Organization admins send an invitation instead."""

    # A username, not a dropdown: listing every user of the installation would leak them.
    username = forms.CharField(
        label=gettext_lazy("Username"), max_length=150, help_text=gettext_lazy("The user's login name.")
    )

    class Meta:
        model = Membership
        fields = ["role"]

    def __init__(self, *args, **kwargs):
        self.organization = kwargs.pop("organization", None)
        super().__init__(*args, **kwargs)


class MembershipChangeForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["role"]

    def clean_role(self) -> str:
        role = self.cleaned_data["role"]
        try:
            membership_ensure_admin_remains(membership=self.instance, new_role=role)
        except Conflict as exc:
            raise ValidationError(exc.message) from exc
        return role


@admin.register(Membership)
class MembershipAdmin(AuditHistoryAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    view_capability = Capability.MANAGE_MEMBERS
    change_capability = Capability.MANAGE_MEMBERS
    list_display = ["user", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__email"]
    actions = None  # bulk delete would bypass the last-admin rule

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        # Nobody joins an organization without consent: its admins invite (Invitations), the user accepts.
        return request.user.is_superuser

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = MembershipAddForm
        else:
            kwargs["form"] = MembershipChangeForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return ["username", "role"] + (["organization"] if request.user.is_superuser else [])
        return ["role"]

    def save_model(self, request: HttpRequest, obj: Membership, form, change: bool) -> None:
        if change:
            membership_change_role(membership=obj, role=form.cleaned_data["role"])
            return
        organization = obj.organization if request.user.is_superuser else active_organization(request)
        created = membership_add(
            organization=organization,
            username=form.cleaned_data["username"],
            role=form.cleaned_data["role"],
        )
        adopt_saved_row(obj, created)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(request.path)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context=None):
        membership = self.get_object(request, object_id)
        if membership is not None:
            try:
                membership_ensure_admin_remains(membership=membership, new_role=None)
            except Conflict as exc:
                self.message_user(request, exc.message, messages.ERROR)
                return HttpResponseRedirect(reverse("admin:tenants_membership_change", args=[membership.pk]))
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        membership_remove(membership=obj)


class InvitationForm(forms.ModelForm):
    class Meta:
        model = Invitation
        fields = ["email", "username", "role"]

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned  # a malformed email is named already
        try:
            invitation_check_invitee(email=cleaned.get("email", ""), username=cleaned.get("username", ""))
        except ValidationError as exc:
            for field, errors in exc.error_dict.items():
                self.add_error(field, errors)
        return cleaned


@admin.register(Invitation)
class InvitationAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    """Invite by email or username; the answer is the same whether or not such a user exists."""

    view_capability = Capability.MANAGE_MEMBERS
    change_capability = Capability.MANAGE_MEMBERS
    form = InvitationForm
    list_display = ["invitee", "role", "status", "invited_by", "created_at", "expires_at"]
    list_filter = ["role"]
    search_fields = ["email", "username"]
    actions = ["revoke_invitations"]

    @admin.display(description=gettext_lazy("invitee"))
    def invitee(self, obj: Invitation) -> str:
        return obj.invitee

    @admin.display(description=gettext_lazy("status"))
    def status(self, obj: Invitation) -> str:
        return Invitation.Status(obj.status).label

    def get_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return ["email", "username", "role"] + (["organization"] if request.user.is_superuser else [])
        return self.get_readonly_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return []
        return [
            "email",
            "username",
            "role",
            "status",
            "invited_by",
            "created_at",
            "expires_at",
            "accepted_at",
            "revoked_at",
        ]

    def save_model(self, request: HttpRequest, obj: Invitation, form, change: bool) -> None:
        if change:
            return  # an invitation is not edited; revoke it and send another
        organization = obj.organization if request.user.is_superuser else active_organization(request)
        invitation, raw_token = invitation_create(
            organization=organization,
            email=form.cleaned_data.get("email", ""),
            username=form.cleaned_data.get("username", ""),
            role=form.cleaned_data["role"],
            invited_by=request.user,
        )
        adopt_saved_row(obj, invitation)
        self.message_user(
            request,
            _(
                "Give this token to %(invitee)s; they accept it, logged in, with POST "
                '/api/v1/invitations/accept/ {"token": "..."}. It is shown only now: %(token)s'
            )
            % {"invitee": invitation.invitee, "token": raw_token},
            messages.WARNING,
        )

    @admin.action(description=gettext_lazy("Revoke selected invitations"))
    def revoke_invitations(self, request: HttpRequest, queryset) -> None:
        revoked = 0
        for invitation in queryset.filter(accepted_at=None):
            invitation_revoke(invitation=invitation)
            revoked += 1
        message = ngettext(
            "Revoked %(count)s invitation(s); accepted ones stay.",
            "Revoked %(count)s invitation(s); accepted ones stay.",
            revoked,
        )
        self.message_user(request, message % {"count": revoked}, messages.SUCCESS)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # revoke instead; the record stays


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        label=gettext_lazy("Scopes"),
        help_text=gettext_lazy("What systems using this key may do."),
    )

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "expires_at"]


@admin.register(ApiKey)
class ApiKeyAdmin(AuditHistoryAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    view_capability = Capability.MANAGE_MEMBERS
    change_capability = Capability.MANAGE_MEMBERS
    form = ApiKeyForm
    list_display = [
        "name",
        "prefix",
        "scopes",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix"]
    actions = ["revoke_keys"]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return []
        return [
            "name",
            "prefix",
            "scopes",
            "expires_at",
            "created_at",
            "created_by",
            "revoked_at",
            "last_used_at",
        ]

    def get_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return ["name", "scopes", "expires_at"] + (["organization"] if request.user.is_superuser else [])
        return self.get_readonly_fields(request, obj)

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if change:
            return  # keys are immutable; revoke and create a new one instead
        organization = obj.organization if request.user.is_superuser else active_organization(request)
        key, raw_key = api_key_create(
            organization=organization,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data.get("expires_at"),
            created_by=request.user,
        )
        adopt_saved_row(obj, key)
        self.message_user(
            request, shown_once(_("Copy this key now; it will not be shown again:"), raw_key), messages.WARNING
        )

    @admin.action(description=gettext_lazy("Revoke selected API keys"))
    def revoke_keys(self, request: HttpRequest, queryset) -> None:
        for key in queryset:
            api_key_revoke(api_key=key)
        count = queryset.count()
        message = ngettext("Revoked %(count)s key(s).", "Revoked %(count)s key(s).", count) % {"count": count}
        self.message_user(request, message, messages.SUCCESS)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # revoke instead; the record stays
