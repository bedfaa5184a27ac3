"""The audit trail: every change to an organization's configuration, who made it, when, from which door.

django-auditlog records the changes (signals, so SQLite and PostgreSQL alike) into `tenants.AuditRecord`;
this package says which models are audited, who the actor is, and keeps secrets out of the records.
"""
