"""A new password ends the user's API login, whichever door set it (admin forms, commands, set_password)."""

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from tenants.middleware import LANGUAGE_SESSION_KEY
from tenants.models import UserSettings
from tenants.services import user_tokens_revoke

CHANGED_ATTR = "_conduit_password_changed"


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="conduit_note_password_change")
def note_password_change(sender, instance, raw: bool = False, update_fields=None, **kwargs) -> None:
    if raw or instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    # The stored hash, not Django's private `_password`: any new hash counts (unusable passwords included).
    stored = sender._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    setattr(instance, CHANGED_ATTR, stored is not None and stored != instance.password)


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="conduit_revoke_tokens_on_password_change")
def revoke_tokens_on_password_change(sender, instance, raw: bool = False, **kwargs) -> None:
    if getattr(instance, CHANGED_ATTR, False):
        setattr(instance, CHANGED_ATTR, False)
        user_tokens_revoke(user=instance)


@receiver(user_logged_in, dispatch_uid="conduit_language_at_login")
def language_at_login(sender, request, user, **kwargs) -> None:
    """The language the user chose before, on this browser too."""
    chosen = UserSettings.objects.filter(user=user).values_list("language", flat=True).first()
    if chosen and request is not None and hasattr(request, "session"):
        request.session[LANGUAGE_SESSION_KEY] = chosen
