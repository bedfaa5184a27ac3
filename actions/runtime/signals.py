"""How other apps learn that invocations ended, inside the transaction that ended them."""

from django.dispatch import Signal

# Sent once per written batch with `invocations`: the finished Invocation objects, as saved.
# Receivers write in the same transaction, so an outcome is never recorded without its consequence.
invocations_finished = Signal()

# Sent by a worker's call loop while its calls are open, at most every MEANWHILE_S (inflight.py):
# the process stays in that loop for seconds, and other due work (the journeys' events and runs)
# would otherwise wait for it to end. Receivers do one bounded batch each.
calls_open = Signal()

# Sent by action_metrics with `action`, `since` and `until`; each receiver answers a dict of further counts
# for the window (journeys: `capped`, calls frequency caps held back, which make no invocation).
metrics_requested = Signal()
