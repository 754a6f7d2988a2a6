"""The lake every layer is stored in (DuckLake on DuckDB).

- ``lake``: the ``Warehouse`` resource; opens DuckDB with the lake attached
- ``catalog``: the layer schemas and the platform's own ``ops`` tables
- ``commits``: one labelled commit (snapshot) per change, retried when another writer won
- ``tables``: a layer's rows replaced in one commit, watermarks, the UI's table metadata
- ``digests``: content-based data versions
- ``ledger``: every landed file version and whether it was verified
- ``snapshots``: versions and rollback
- ``maintenance``: compacting small files, expiring old snapshots, deleting unreferenced files (never under a reader)
- ``reader``: read-only SQL for notebooks and ``platform-assets sql``, snapshot blocks
"""
