"""The admin of secret values, SMTP settings and email actions: the services' rules, write-only secrets."""

from django.db import connection
from django.urls import reverse

from actions.models import Action, EmailSettings, SecretValue
from tests.actions.test_admin import FORM

SECRET = "T0001/B0002/very-secret-path"
PASSWORD = "smtp-PASSWORD-991"


def _form(response):
    return response.context["adminform"].form


def _raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_a_secret_value_is_written_once_and_never_shown_again(world, client):
    client.force_login(world.user("technical"))
    response = client.post(
        reverse("admin:actions_secretvalue_add"), {"name": "SLACK_WEBHOOK", "value": SECRET, "description": "#sales"}
    )
    assert response.status_code == 302
    secret = SecretValue.objects.get(organization=world.acme, name="SLACK_WEBHOOK")
    assert secret.value == SECRET and SECRET not in _raw("actions_secretvalue", "value", secret.pk)

    listing = client.get(reverse("admin:actions_secretvalue_changelist")).content.decode()
    assert "{{secrets.SLACK_WEBHOOK}}" in listing and SECRET not in listing
    change = reverse("admin:actions_secretvalue_change", args=[secret.pk])
    page = client.get(change).content.decode()
    assert SECRET not in page and "Leave blank to keep it" in page

    # Saving with the value left blank keeps it.
    assert client.post(change, {"name": "SLACK_WEBHOOK", "value": "", "description": "sales"}).status_code == 302
    secret.refresh_from_db()
    assert secret.value == SECRET and secret.description == "sales"


def test_secret_value_problems_are_shown_on_their_fields(world, client):
    client.force_login(world.user("technical"))
    SecretValue.objects.create(organization=world.acme, name="TAKEN", value="x")
    response = client.post(reverse("admin:actions_secretvalue_add"), {"name": "TAKEN", "value": "y"})
    assert response.status_code == 200
    assert "already has a secret value named TAKEN" in str(_form(response).errors["name"])
    response = client.post(reverse("admin:actions_secretvalue_add"), {"name": "bad name", "value": ""})
    errors = _form(response).errors
    assert "letters, digits and _" in str(errors["name"]) and "required" in str(errors["value"])


def test_a_secret_value_in_use_cannot_be_deleted(world, client):
    client.force_login(world.user("technical"))
    secret = SecretValue.objects.create(organization=world.acme, name="HOOK", value=SECRET)
    world.acme.allow_http = False
    Action.objects.create(
        organization=world.acme, name="Slack", url="https://hooks.slack.com/services/{{secrets.HOOK}}"
    )
    response = client.post(reverse("admin:actions_secretvalue_delete", args=[secret.pk]), {"post": "yes"}, follow=True)
    assert "The actions Slack use {{secrets.HOOK}}" in response.content.decode()
    assert SecretValue.objects.filter(pk=secret.pk).exists()


def test_email_settings_keep_the_password_write_only_and_exist_once(world, client):
    client.force_login(world.user("admin"))
    data = {"host": "smtp.example.com", "port": "587", "security": "starttls", "username": "shop",
            "password": PASSWORD, "default_from": "Acme <shop@acme.test>", "timeout_s": "10"}  # fmt: skip
    assert client.post(reverse("admin:actions_emailsettings_add"), data).status_code == 302
    settings_ = EmailSettings.objects.get(organization=world.acme)
    assert settings_.password == PASSWORD and PASSWORD not in _raw("actions_emailsettings", "password", settings_.pk)
    page = client.get(reverse("admin:actions_emailsettings_change", args=[settings_.pk])).content.decode()
    assert PASSWORD not in page and "Leave blank to keep it" in page
    assert client.get(reverse("admin:actions_emailsettings_add")).status_code == 403  # one per organization

    bad = {**data, "host": "smtp://nope", "default_from": "not an address"}
    response = client.post(reverse("admin:actions_emailsettings_change", args=[settings_.pk]), bad)
    errors = _form(response).errors
    assert "without scheme or port" in str(errors["host"]) and "not an email address" in str(errors["default_from"])


def test_a_technical_user_makes_an_email_action_in_the_action_form(world, client):
    client.force_login(world.user("technical"))
    EmailSettings.objects.create(organization=world.acme, host="smtp.example.com", default_from="shop@acme.test")
    form = {**FORM, "name": "Welcome email", "kind": "email", "url": "", "body": "", "headers": "",
            "auth_type": "none", "bearer_token": "", "generate_signing_secret": "",
            "parameters": '[{"name": "email", "type": "string"}, {"name": "first_name", "type": "string"}]',
            "email_to": "{{email}}", "email_subject": "Welcome, {{first_name}}", "email_text": "Hi {{first_name}}",
            "email_html": "<p>Hi {{first_name}}</p>"}  # fmt: skip
    response = client.post(reverse("admin:actions_action_add"), form)
    assert response.status_code == 302, _form(response).errors
    action = Action.objects.get(name="Welcome email")
    assert action.kind == "email" and action.email["subject"] == "Welcome, {{first_name}}"
    page = client.get(reverse("admin:actions_action_change", args=[action.pk])).content.decode()
    assert "Welcome, {{first_name}}" in page

    broken = {**form, "name": "Broken", "email_subject": "Hi {{nobody}}", "email_to": ""}
    errors = _form(client.post(reverse("admin:actions_action_add"), broken)).errors
    assert "names no declared parameter" in str(errors["email_subject"]) and "required" in str(errors["email_to"])
    # Switching an HTTP action to email: the hidden Request fields it still posts are left behind.
    switched = {**form, "name": "Switched", "url": "https://api.example.com/x", "body": '{"a": 1}'}
    assert client.post(reverse("admin:actions_action_add"), switched).status_code == 302
    action = Action.objects.get(name="Switched")
    assert (action.kind, action.url, action.body) == ("email", "", None)


def test_a_bad_service_account_key_is_named_on_its_field(world, client):
    client.force_login(world.user("technical"))
    form = {**FORM, "name": "Push", "auth_type": "google_service_account", "bearer_token": "",
            "google_service_account_json": '{"type": "user"}'}  # fmt: skip
    errors = _form(client.post(reverse("admin:actions_action_add"), form)).errors
    assert "not a service-account key file" in str(errors["google_service_account_json"])


def test_lesser_roles_and_other_organizations_are_kept_out(world, client):
    secret = SecretValue.objects.create(organization=world.acme, name="HOOK", value=SECRET)
    client.force_login(world.user("marketer"))
    for name in ("secretvalue", "emailsettings"):
        assert client.get(reverse(f"admin:actions_{name}_changelist")).status_code == 403
    assert client.get(reverse("admin:actions_action_templates")).status_code == 403
    client.force_login(world.globex_admin.user)
    assert SECRET not in client.get(reverse("admin:actions_secretvalue_changelist")).content.decode()
    response = client.get(reverse("admin:actions_secretvalue_change", args=[secret.pk]))
    assert response.status_code == 302  # the admin's "does not exist" redirect, never the row
