"""Every write with its rules, one module per noun; each module's `__all__` is its public surface for the doors."""
