"""How other apps learn that an invocation ended, inside the transaction that ended it."""

from django.dispatch import Signal

# Sent with invocation_id, status and outcome; receivers write in the same transaction.
invocation_finished = Signal()
