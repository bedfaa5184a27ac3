"""The journeys admin: the builder (journeys, their steps, tests and reports) and the runs it follows.

Django's autodiscovery imports this package; importing the modules registers their ModelAdmins.
"""

from journeys.admin import builder, frequency_caps, profile_import, runs, segments

__all__ = ["builder", "frequency_caps", "profile_import", "runs", "segments"]
