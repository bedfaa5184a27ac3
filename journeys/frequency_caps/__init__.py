"""Frequency caps per profile across journeys (issue 20): the caps people set, and the counting the engine asks.

`services` writes caps (for the API and the admin), `counting` decides whether a step's call may be made,
`api` is the API's door.
"""
