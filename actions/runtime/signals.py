"""How other apps learn that invocations ended, inside the transaction that ended them."""

from django.dispatch import Signal

# Sent once per written batch with `invocations`: the finished Invocation objects, as saved.
# Receivers write in the same transaction, so an outcome is never recorded without its consequence.
invocations_finished = Signal()
