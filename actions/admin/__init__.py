"""The admin door: one module per service module, registered when Django's admin autodiscovers this package."""

from actions.admin import actions, circuits, email_settings, endpoint_limits, invocations, palette, secret_values

__all__ = ["actions", "circuits", "email_settings", "endpoint_limits", "invocations", "palette", "secret_values"]
