"""Raw layer: landed files, typed but otherwise as delivered, one asset per declared dataset.

Every landed dataset (``datasets/``, a ``defs.yaml`` each) gets the same asset: a load
is all-or-nothing, the file is parsed completely into a staging table first, then the
rows it replaces go in one lake commit (one snapshot) together with the ledger entry.
A file that cannot be parsed is quarantined with its reason and the lake is not touched.
"""


import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb

from platform_assets import disk_space
from platform_assets.datasets.component import LINEAGE_COLUMNS, LandedDataset
from platform_assets.loading import BadFile, stage_csv
from platform_assets.resources import QUARANTINED, LandingZone, Warehouse, landing_outcome
from platform_assets.storage import Entry
from platform_assets.warehouse import commits, ledger
from platform_assets.warehouse.tables import scalar

# Set by the landing sensor on each load it starts: when the file's content first landed (ISO 8601),
# and (for a dataset whose file replaces the table) which file it is.
LANDED_AT_TAG = "platform/landed_at"
FILE_TAG = "platform/file"


def landed_asset(dataset: LandedDataset) -> dg.AssetsDefinition:
    """The raw asset of a dataset: one partition per file, or one table a file replaces."""
    layer = dataset.table.split(".")[0]
    grain = ("one partition per file; a new version of a file replaces that file's rows" if dataset.per_file
             else "a new file replaces the table")
    description = (
        f"{dataset.description.strip()}\n\n"
        f"**Files:** `{dataset.files.pattern}` in landing/; {grain}.\n\n"
        "**Built by** DuckDB's CSV reader against the columns declared in "
        f"`{dataset.defs_yaml.parent.name}/defs.yaml` (no type guessing), in one lake commit with the "
        "`ops.landed_files` ledger; a file that cannot be parsed is quarantined with its reason. Checked by "
        f"its Soda contract, `{dataset.defs_yaml.parent.name}/{dataset.contract}`."
    )

    @dg.asset(
        key=dataset.asset_key,
        group_name=layer,
        kinds={"duckdb", "csv", "soda"},
        owners=dataset.owners,
        tags={"layer": layer, **dataset.tags},
        code_version="1",
        pool="duckdb",
        partitions_def=dataset.partitions_def,
        freshness_policy=dataset.freshness_policy,
        description=description,
        metadata={"dagster/column_schema": table_schema(dataset), "dagster/table_name": dataset.table,
                  "file_pattern": dataset.files.pattern},
    )
    def raw_asset(context: dg.AssetExecutionContext, warehouse: Warehouse, landing: LandingZone) -> dg.MaterializeResult:
        return _load_file(context, warehouse, landing, dataset, _file_name(context, dataset))

    return raw_asset


def table_schema(dataset: LandedDataset) -> dg.TableSchema:
    """The table's columns as declared, and the two the platform adds."""
    return dg.TableSchema(columns=[
        *(dg.TableColumn(c.name, c.type, description=c.description) for c in dataset.columns),
        *(dg.TableColumn(name, kind, description=text) for name, (kind, text) in LINEAGE_COLUMNS.items())])


def _file_name(context: dg.AssetExecutionContext, dataset: LandedDataset) -> str:
    """The file this run loads: its partition; the landing sensor's tag; the only name the pattern has;
    else the version loaded last (a manual re-materialization)."""
    if dataset.per_file:
        return context.partition_key
    if context.run.tags.get(FILE_TAG):
        return context.run.tags[FILE_TAG]
    if not dataset.pattern.parts:
        return dataset.files.pattern
    with context.resources.warehouse.get_connection() as conn:
        rows = conn.execute(f"SELECT file_name FROM {ledger.TABLE} WHERE kind = ? AND status = 'loaded' "
                            "ORDER BY loaded_at DESC LIMIT 1", [dataset.name]).fetchall()
    if not rows:
        raise dg.Failure(description=f"{dataset.table} has no file loaded yet: land one ({dataset.files.pattern})")
    return rows[0][0]


def _load_file(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    landing: LandingZone,
    dataset: LandedDataset,
    name: str,
) -> dg.MaterializeResult:
    """Replace the rows ``name`` contributed to the dataset's table (all of it, when a file replaces the table).

    Order matters for "nothing lost, nothing half-done": check there is disk space for it,
    parse fully, copy the file into archive/, commit rows and ledger in one transaction, and
    only then take the file out of landing/. A commit that fails (a full disk, a catalog locked
    past its window) takes the archive copy with it: only loaded versions are archived. A
    failure after the commit fails the run with a plain message; the batch is then
    unverified (its checks did not run), so nothing downstream reads it until a retry.
    """
    landed = landing.landed(name)
    space = _space_needed(landed, landing, warehouse) if landed else None
    if space:  # before even opening the lake, which a full disk can refuse too
        disk_space.require(space, f"loading {name}")
    with warehouse.get_connection() as conn:
        try:
            source = landing.locate(name, ledger.loaded_hash(conn, name))
            digest = source.sha256()
        except FileNotFoundError as missing:
            raise dg.Failure(description=str(missing)) from None
        landed_at = _landed_at(context, conn, name, digest)
        context.log.info(f"loading {source.url} ({source.size:,} bytes, sha256 {digest[:12]}, "
                         f"landed {landed_at:%Y-%m-%d %H:%M:%S})")
        started = time.perf_counter()
        from_landing = source.is_in(landing.landing)
        if space is None:  # loaded from its archived copy
            space = _space_needed(source, landing, warehouse)
            disk_space.require(space, f"loading {name}")
        if not source.place.is_local:
            warehouse.reach_object_storage(conn)
        try:
            rows = stage_csv(conn, source, dataset, "staged")
        except BadFile as bad:
            reason = str(bad)

            def record_quarantined() -> None:
                ledger.record_quarantined(conn, name, kind=dataset.name, content_hash=digest,
                                          size_bytes=source.size, reason=reason, landed_at=landed_at)
                commits.set_commit_message(conn, f"quarantine {name}", {"file": name, "run_id": context.run.run_id})

            commits.write(conn, record_quarantined, log=context.log)
            if from_landing:
                landing.move_to_quarantine(source, reason)
            context.log_event(landing_outcome(context.asset_key, QUARANTINED, name, reason,
                                              partition=context.partition_key if context.has_partition_key else None))
            raise dg.Failure(
                description=f"{name} was quarantined, nothing was loaded: {reason}",
                metadata={"file": name, "reason": reason, "quarantined_to": str(landing.quarantine)},
            ) from None
        context.log.info(f"parsed {rows:,} rows in {time.perf_counter() - started:.2f}s")

        replaced, table = "_source_file = $name" if dataset.per_file else "true", dataset.table

        def commit_rows() -> None:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({_columns_ddl(dataset)})")
            conn.execute(f"DELETE FROM {table} WHERE {replaced}", {"name": name} if "$name" in replaced else {})
            conn.execute(f"INSERT INTO {table} SELECT *, $name, now() FROM staged", {"name": name})
            ledger.record_loaded(conn, name, kind=dataset.name, content_hash=digest, size_bytes=archived.size,
                                 rows=rows, landed_at=landed_at)
            commits.set_commit_message(conn, f"load {name} into {table}", {
                "table": table, "file": name, "content_hash": digest, "rows": rows, "run_id": context.run.run_id})

        try:
            archived, copied = landing.archive_copy(source, digest, landed_at)
            try:
                commits.write(conn, commit_rows, log=context.log)
            except BaseException:
                if copied:
                    landing.discard_archive_copy(archived)
                raise
        except (OSError, duckdb.Error) as error:
            if isinstance(error, PermissionError):  # e.g. an identity without write on the archive bucket
                raise dg.Failure(description=f"{name}: nothing was loaded: keeping its copy in {landing.archive} was "
                                             f"refused ({error}); the landing sensor tries again") from None
            short = disk_space.shortage(space)
            if disk_space.is_out_of_space(error) or short is not None:
                where, needed = short or (Path(warehouse.data_path), sum(space.values()))
                raise disk_space.out_of_space(where, needed, f"loading {name}", error) from None
            raise
        snapshot = commits.last_snapshot(conn)
        table_rows = scalar(conn, f"SELECT count(*) FROM {table}")

    if from_landing and not _remove_from_landing(source, rows, archived):
        context.log.warning(f"{name} changed in landing while it loaded: that new version stays there, and the "
                            "landing sensor takes it as a new landing")
    context.log.info(f"committed {rows:,} rows of {name} into {table} (snapshot {snapshot}); "
                     f"file archived as {archived.url}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "dagster/table_name": table,
            "dagster/column_schema": table_schema(dataset),
            "table_row_count": table_rows,
            "snapshot": snapshot,
            "source_file": name,
            "content_hash": digest,
            "landed_at": landed_at.isoformat(),
            "archived_as": dg.MetadataValue.path(archived.url),
            "size_bytes": archived.size,
            "load_seconds": round(time.perf_counter() - started, 3),
        }
    )


def _space_needed(source: Entry, landing: LandingZone, warehouse: Warehouse) -> dict[Path, int]:
    """On local disks: the file's archive copy (unless it is loaded from it), its Parquet data (no bigger than
    the CSV), the catalog's."""
    size, needs = source.size, {}
    if landing.archive.is_local:
        needs[Path(landing.archive.path_of(source.name))] = 0 if source.is_in(landing.archive) else size
    if "://" not in warehouse.data_path:
        needs[Path(warehouse.data_path)] = size
    if warehouse.is_embedded:
        needs[Path(warehouse.catalog.removeprefix("sqlite:"))] = disk_space.HEADROOM_BYTES
    return needs


def _landed_at(context: dg.AssetExecutionContext, conn, name: str, digest: str) -> datetime:
    """When this content landed: the landing sensor says so; a manual re-load keeps what the ledger knows."""
    tagged = context.run.tags.get(LANDED_AT_TAG)
    if tagged:
        return datetime.fromisoformat(tagged)
    return ledger.landed_at(conn, name, digest) or datetime.now(UTC)


def _remove_from_landing(source: Entry, rows: int, archived: Entry) -> bool:
    """Take the loaded file out of landing; False if a new version landed under its name meanwhile."""
    try:
        return source.place.remove_if_unchanged(source)
    except OSError as error:
        raise dg.Failure(
            description=(f"{source.name}: its {rows:,} rows were committed and the file archived as {archived.url}, "
                         f"but it could not be removed from landing/ ({error.strerror or error}). The batch stays "
                         "unverified, so nothing downstream reads it; the landing sensor tries the load again."),
            metadata={"file": source.name, "error": str(error), "archived_as": archived.url},
        ) from None


def _columns_ddl(dataset: LandedDataset) -> str:
    columns = [(c.name, c.type) for c in dataset.columns] + [(name, kind) for name, (kind, _) in LINEAGE_COLUMNS.items()]
    return ", ".join(f'"{name}" {kind}' for name, kind in columns)
