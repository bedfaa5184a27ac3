from tests.journeys.helpers import action, receiver  # noqa: F401  (fixtures)
