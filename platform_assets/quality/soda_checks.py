"""Turn each Soda contract into one Dagster multi-asset check, one Dagster check per Soda check.

A landed dataset's contract is its own file completed from its ``defs.yaml``
(``quality/contracts.py``); a layer's is a file in ``soda/contracts/``. It is verified
in-process on the run's own DuckDB connection, and reads only the batch: on a
partitioned asset the filter is bound to the partition (``${var.partition}``, and
when the file's name has dates, the days it covers, ``${var.first_date}`` ..
``${var.last_date}``); a contract declaring ``verified_through`` reads the rows
written after the last run whose blocking checks all passed (kept in
``ops.watermarks``), so failed rows are checked again next time.

On a landed dataset the outcome is written to the ledger: a landed file whose
blocking checks all passed is verified, and only verified files are read downstream.
"""

import os

os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")  # before soda_core is imported

from pathlib import Path

import dagster as dg
import duckdb
from soda_core.common.yaml import ContractYamlSource
from soda_core.contracts.contract_verification import ContractVerificationSession
from soda_duckdb.common.data_sources.duckdb_data_source import DuckDBDataSourceImpl

from platform_assets.datasets.component import LandedDataset
from platform_assets.excerpts import NAME_CHARS, excerpt
from platform_assets.quality.contracts import (
    DATA_SOURCE,
    VERIFIED_VARIABLE,
    Contract,
    ContractError,
    dataset_contract,
    load_contract,
)
from platform_assets.quality.failing_rows import failing_rows_query
from platform_assets.resources import Warehouse
from platform_assets.warehouse import commits, ledger, tables


def contract_checks(contracts_dir: Path, assets: list[dg.AssetsDefinition]) -> list[dg.AssetChecksDefinition]:
    """One multi-asset check per contract file; each contract must name an asset in ``assets``."""
    partitions = {key: a.partitions_def for a in assets for key in a.keys}
    checks = []
    for path in sorted(contracts_dir.glob("*.yml")):
        contract = load_contract(path)
        if contract.asset_key not in partitions:
            raise ContractError(f"{path}: dataset {contract.dataset} is not an asset of this code location")
        checks.append(_multi_asset_check(contract, partitions[contract.asset_key]))
    return checks


def dataset_checks(dataset: LandedDataset, asset: dg.AssetsDefinition) -> dg.AssetChecksDefinition:
    """The checks of a landed dataset's contract (with what the platform adds to it), on its asset."""
    return _multi_asset_check(dataset_contract(dataset), asset.partitions_def, dataset)


def _multi_asset_check(contract: Contract, partitions_def, dataset: LandedDataset | None = None
                       ) -> dg.AssetChecksDefinition:
    scope = partitions_def if contract.scoped_to_partition else None
    specs = [
        dg.AssetCheckSpec(
            check.name,
            asset=contract.asset_key,
            description=check.description,
            blocking=check.blocking,
            partitions_def=scope,
            metadata={"soda_check_type": check.check_type, "column": check.column or "",
                      "contract": contract.path.name},
        )
        for check in contract.checks
    ]

    @dg.multi_asset_check(
        specs=specs,
        name=f"{contract.table.replace('.', '_')}_contract",
        description=f"Soda data contract {contract.path.name}",
        compute_kind="soda",
        pool="duckdb",
    )
    def verify(context: dg.AssetCheckExecutionContext, warehouse: Warehouse):
        partition = context.partition_key if scope is not None else None
        variables = _partition_variables(dataset, partition) if partition is not None else {}
        with warehouse.get_connection() as conn:
            if not contract.scoped_to_unverified:
                results = list(_verify(context, conn, contract, variables))
                if dataset is not None:  # a landed dataset: its files are verified, or not, in the ledger
                    _record_verification(context, conn, contract, partition, results)
                yield from results
                return
            verified, newest = _unverified_range(conn, contract.table)
            context.log.info(f"verifying rows of {contract.table} written after {verified or 'the beginning'}")
            results = list(_verify(context, conn, contract, {VERIFIED_VARIABLE: str(verified or "-infinity")}))
            if newest is not None and all(r.passed for r in results if r.severity == dg.AssetCheckSeverity.ERROR):
                def record_verified() -> None:
                    tables.set_watermark(conn, _verified_key(contract.table), newest)
                    commits.set_commit_message(conn, f"verified {contract.table} through {newest}",
                                               {"run_id": context.run.run_id})

                commits.write(conn, record_verified, log=context.log)
        yield from results

    return verify


def _partition_variables(dataset: LandedDataset | None, partition: str) -> dict[str, str]:
    """What a contract may use of a partition: its key (a file name) and the days its name covers, if it has some."""
    days = dataset.pattern.dates(partition) if dataset is not None else None
    return {"partition": partition} | ({"first_date": str(days[0]), "last_date": str(days[1])} if days else {})


def _record_verification(context, conn, contract: Contract, partition: str | None, results) -> None:
    """Mark the landed files this batch holds as verified, or not, in the ledger."""
    files = [partition] if partition is not None else [
        f for (f,) in conn.execute(f"SELECT DISTINCT _source_file FROM {contract.table}").fetchall()]
    passed = all(r.passed for r in results if r.severity == dg.AssetCheckSeverity.ERROR)

    def record() -> None:
        ledger.set_verified(conn, files, passed)
        commits.set_commit_message(conn, f"{'verified' if passed else 'failed checks'}: {', '.join(files)}",
                                   {"run_id": context.run.run_id, "files": files})

    commits.write(conn, record, log=context.log)
    context.log.info(f"{', '.join(files) or 'no file'}: "
                     + ("verified, may flow downstream" if passed else "blocking checks failed, not read downstream"))


def _unverified_range(conn, table: str):
    """(last verified ``_updated_at`` or None, newest ``_updated_at`` now): the rows to verify lie between."""
    key = _verified_key(table)
    verified = tables.scalar(conn, "SELECT high_water FROM ops.watermarks WHERE table_name = ?", [key])
    newest = tables.scalar(conn, f"SELECT max(_updated_at) FROM {table}") if tables.table_exists(conn, table) else None
    return verified, newest


def _verified_key(table: str) -> str:
    return f"{table} (verified by its contract)"


# what DuckDB raises when a query is interrupted: by a signal, or by ``interrupt()``
_INTERRUPTED = ("Query interrupted", "INTERRUPT Error")


def _verify(context, conn, contract: Contract, variables: dict[str, str]):
    data_source = DuckDBDataSourceImpl.from_existing_cursor(conn, name=DATA_SOURCE)
    session = ContractVerificationSession.execute(
        contract_yaml_sources=[ContractYamlSource.from_str(contract.source, file_path=str(contract.path))],
        data_source_impls=[data_source], variables=variables,
    )
    (verification,) = session.contract_verification_results
    results = {r.check.qualifier: r for r in verification.check_results}
    errors = verification.get_errors_str()
    if any(message in errors for message in _INTERRUPTED):
        # soda-core reports a query DuckDB cut short (the run is being stopped) as a check it could not
        # evaluate; as failed checks it would stop the batch for good. Interrupted, it gets checked again.
        raise KeyboardInterrupt(f"{contract.path.name}: the verification was interrupted ({errors.splitlines()[0]})")
    for check in contract.checks:
        result = results.get(check.name)
        outcome = result.outcome.name if result is not None else "NOT_EVALUATED"
        passed = outcome == "PASSED"
        metadata = {"outcome": outcome}
        if result is not None:
            metadata |= {k: v for k, v in (result.diagnostic_metric_values or {}).items()
                         if isinstance(v, (int, float))}
            metadata["summary"] = excerpt(result.log_table_row_diagnostics(verbose=False).strip())
        if outcome == "NOT_EVALUATED":
            metadata["summary"] = f"not evaluated: {excerpt(errors) or 'soda-core gave no result for this check'}"
        if not passed:
            metadata |= _failing_rows_sample(conn, contract, check, variables)
            context.log.warning(f"{contract.asset_key.to_user_string()} {check.name} {outcome}: {metadata['summary']}")
        yield dg.AssetCheckResult(
            asset_key=contract.asset_key,
            check_name=check.name,
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR if check.blocking else dg.AssetCheckSeverity.WARN,
            metadata=metadata,
            description=check.description if passed else f"{check.description} Failed: {metadata.get('summary', outcome)}",
        )


def _failing_rows_sample(conn, contract: Contract, check, variables: dict[str, str]) -> dict:
    """A few failing rows as a markdown table; a query that cannot run is reported, not raised."""
    query = failing_rows_query(contract, check, variables)
    if query is None:
        return {}
    try:
        sample = conn.sql(query).pl()
    except duckdb.Error as error:
        return {"failing_rows": f"no sample: {excerpt(str(error).splitlines()[0])}"}
    return {"failing_rows": dg.MetadataValue.md(_markdown(sample))} if sample.height else {}


def _markdown(frame) -> str:
    """The rows as a markdown table; the values come from landed files, so each cell is cut short."""
    def cell(value) -> str:
        return excerpt(str(value).replace("\n", " ").replace("|", "\\|"), line_chars=NAME_CHARS)

    header = "| " + " | ".join(cell(c) for c in frame.columns) + " |\n|" + "---|" * frame.width + "\n"
    return header + "\n".join("| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows())
