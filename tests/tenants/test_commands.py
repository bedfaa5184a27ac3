import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from tenants.models import Membership, Organization


def test_org_create_and_member_add_give_a_working_login(db):
    call_command("org_create", "acme", "Acme Inc")
    call_command("member_add", "acme", "alice", "--role", "technical", "--password", "s3cret-pass-77")
    membership = Membership.objects.get(user__username="alice")
    assert membership.organization.name == "Acme Inc" and membership.role == "technical"
    assert membership.user.check_password("s3cret-pass-77")


def test_operator_commands_explain_their_refusals(db):
    call_command("org_create", "acme", "Acme Inc")
    with pytest.raises(CommandError, match="slug"):
        call_command("org_create", "acme", "Again")
    with pytest.raises(CommandError, match="slug"):
        call_command("org_create", "not a slug", "Spaces")
    with pytest.raises(CommandError, match='No organization "nope"'):
        call_command("member_add", "nope", "bob", "--role", "viewer")
    call_command("member_add", "acme", "bob", "--role", "viewer")
    with pytest.raises(CommandError, match="already a member"):
        call_command("member_add", "acme", "bob", "--role", "admin")


def test_seed_demo_is_idempotent_and_prints_the_logins(db, capsys):
    call_command("seed_demo")
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "marketer-demo-pass" in out
    assert set(Organization.objects.values_list("slug", flat=True)) == {"acme", "globex"}
    roles = dict(Membership.objects.filter(organization__slug="acme").values_list("user__username", "role"))
    assert roles == {
        "admin": "admin",
        "tech": "technical",
        "marketer": "marketer",
        "viewer": "viewer",
    }
    assert Membership.objects.get(user__username="globex_admin").organization.slug == "globex"
    assert get_user_model().objects.get(username="viewer").check_password("viewer-demo-pass")
