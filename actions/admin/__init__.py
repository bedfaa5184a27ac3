"""The admin door: one module per service module, registered when Django's admin autodiscovers this package."""

from actions.admin import actions, invocations, secret_values

__all__ = ["actions", "invocations", "secret_values"]
