"""Who hears about what: failed blocking checks, quarantined and stuck files, failed runs, stale data.

``events`` reads Dagster's event log into findings, ``incidents`` keeps them once per
incident and groups bursts, ``messages`` writes what people read, ``channels`` delivers
through apprise and keeps what could not be delivered, ``sensor`` ties them together.
"""
