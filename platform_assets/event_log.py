"""Dagster's event log read forward from a storage id: how the platform's sensors learn what happened.

A sensor keeps the last storage id it read in its cursor, so a tick costs a few indexed
queries however long the history is, and an idle instance costs next to nothing.
"""

import dagster as dg

PAGE = 1000  # events of one kind read per tick; the rest wait for the next one


def read_after(instance: dg.DagsterInstance, after: int, event_types) -> tuple[list, int]:
    """The events of ``event_types`` stored after ``after`` (oldest first), and where to read from next time."""
    storage = instance.event_log_storage
    newest = storage.get_maximum_record_id() or 0  # read first: an event stored meanwhile waits for the next tick
    found = {}
    for event_type in event_types:
        page = storage.get_logs_for_all_runs_by_log_id(after_cursor=after, dagster_event_type=event_type, limit=PAGE)
        if len(page) == PAGE:
            newest = min(newest, max(page))
        found.update(page)
    return [found[i] for i in sorted(found) if i <= newest], max(newest, after)
