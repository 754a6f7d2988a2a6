"""Read a Soda contract into the facts Dagster needs to declare its checks.

Runs at definition load time, so a broken contract fails loudly there, naming
the file and the problem, instead of at the first run. The contract is
validated against the JSON schema soda-core ships.
"""

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import jsonschema
import yaml

from platform_assets.datasets.component import LINEAGE_COLUMNS

if TYPE_CHECKING:
    from platform_assets.datasets.component import LandedDataset

DATA_SOURCE = "warehouse"
PARTITION_VARIABLE = "${var.partition}"
VERIFIED_VARIABLE = "verified_through"  # filled by the check: rows written after it are not verified yet
_CHECK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ContractError(Exception):
    """A contract file Dagster cannot turn into checks; the message names the file."""


@dataclass(frozen=True)
class ContractCheck:
    name: str
    check_type: str
    column: str | None
    description: str
    blocking: bool
    spec: dict


@dataclass(frozen=True)
class Contract:
    path: Path
    dataset: str
    checks: tuple[ContractCheck, ...]
    filter: str | None
    scoped_to_partition: bool
    scoped_to_unverified: bool
    source: str  # the contract as Soda reads it (for a landed dataset, with what the platform adds)

    @property
    def table(self) -> str:
        return ".".join(self.dataset.split("/")[1:])

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(self.dataset.split("/")[1:])


def load_contract(path: Path) -> Contract:
    """A contract file as it is (the layers' contracts in soda/contracts/)."""
    return contract_from(_read(path), path)


def dataset_contract(dataset: "LandedDataset") -> Contract:
    """A landed dataset's contract: its own checks, and what the platform knows from its defs.yaml.

    Added: the dataset id, the filter to one file's rows and the variables of its name (one
    partition per file), a schema check of the declared columns and types, a "not missing"
    check per required column, and ``dates_within_file_name`` when a column must lie within
    the days the name promises. The contract's own columns must be declared ones.
    """
    path = dataset.contract_path
    document = _read(path) or {}
    declared = {c.name: c for c in dataset.columns}
    own_columns = document.get("columns") or []
    for index, column in enumerate(own_columns):
        if not isinstance(column, dict) or column.get("name") not in declared:
            name = column.get("name") if isinstance(column, dict) else column
            raise ContractError(f"{path}:{_line(path, 'columns', index)}: column {name!r} is not a column of "
                                f"{dataset.table} (declared in {dataset.defs_yaml}: {', '.join(declared)})")
    own_checks = {column["name"]: column.get("checks") or [] for column in own_columns}
    schema, table = dataset.table.split(".")
    checks = [{"schema": {"qualifier": f"{schema}_{table}_schema",
                          "name": f"Columns and types are those declared for {dataset.table}."}}]
    if dataset.dates_in is not None:
        checks.append({"failed_rows": {
            "qualifier": "dates_within_file_name",
            "name": f"Every {dataset.dates_in} lies within the days the file's name covers "
                    "(a mislabeled file never overwrites another day).",
            "expression": f"\"{dataset.dates_in}\" NOT BETWEEN DATE '${{var.first_date}}' AND DATE '${{var.last_date}}'"}})
    columns = [{"name": c.name, **_data_type(c.type),
                "checks": ([{"missing": {"qualifier": f"{_snake(c.name)}_not_missing",
                                         "name": f"Every row has a {c.name}."}}] if c.required else [])
                + own_checks.get(c.name, [])} for c in dataset.columns]
    composed = {
        "dataset": f"{DATA_SOURCE}/{schema}/{table}",
        "description": dataset.description.strip().splitlines()[0],
        **({"filter": f"_source_file = '{PARTITION_VARIABLE}'",
            "variables": {"partition": {"default": ""}, "first_date": {"default": "0001-01-01"},
                          "last_date": {"default": "9999-12-31"}} | (document.get("variables") or {})}
           if dataset.per_file else {"variables": document["variables"]} if document.get("variables") else {}),
        "checks": checks + (document.get("checks") or []),
        "columns": [{k: v for k, v in c.items() if v} for c in columns]
        + [{"name": name, "data_type": kind} for name, (kind, _) in LINEAGE_COLUMNS.items()],
    }
    return contract_from(composed, path)


def contract_from(document, path: Path) -> Contract:
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(_soda_schema()).iter_errors(document))
    if error is not None:
        raise ContractError(f"{path}: not a valid Soda contract at {error.json_path}: {error.message}")
    dataset = document["dataset"]
    if len(dataset.split("/")) != 3 or not dataset.startswith(f"{DATA_SOURCE}/"):
        raise ContractError(f"{path}: dataset must be '{DATA_SOURCE}/<schema>/<table>', got {dataset!r}")

    checks = [_check(path, item, None) for item in document.get("checks") or []]
    for column in document.get("columns") or []:
        checks += [_check(path, item, column["name"]) for item in column.get("checks") or []]
    names = [c.name for c in checks]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ContractError(f"{path}: check qualifiers must be unique, repeated: {', '.join(duplicated)}")
    filter_sql = document.get("filter")
    return Contract(path, dataset, tuple(checks), filter_sql, PARTITION_VARIABLE in (filter_sql or ""),
                    VERIFIED_VARIABLE in (document.get("variables") or {}), yaml.safe_dump(document, sort_keys=False))


def _read(path: Path):
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ContractError(f"{path}: cannot be read as YAML: {error}") from None


def _line(path: Path, key: str, index: int) -> int | str:
    """The line of item ``index`` of the top-level list ``key`` in a YAML file, for messages."""
    try:
        root = yaml.compose(path.read_text())
        (items,) = [value for name, value in root.value if name.value == key]
        return items.value[index].start_mark.line + 1
    except Exception:  # the file was read a moment ago; a message without a line is still a message
        return "?"


def _data_type(kind: str) -> dict:
    """A declared type as Soda's schema check compares it: DECIMAL(p,s) as the type and its two numbers."""
    decimal = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", kind)
    if decimal:
        return {"data_type": "DECIMAL", "numeric_precision": int(decimal.group(1)),
                "numeric_scale": int(decimal.group(2))}
    return {"data_type": kind}


def _snake(name: str) -> str:
    """DayOfWeek -> day_of_week: a column name as part of a check's qualifier."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).replace(" ", "_").lower()


def _check(path: Path, item: dict, column: str | None) -> ContractCheck:
    """Soda's ``qualifier`` identifies the check (the Dagster check name); its ``name`` describes it."""
    ((check_type, spec),) = item.items()
    spec = spec or {}
    where = f"{check_type} check" + (f" on column {column}" if column else "")
    qualifier = spec.get("qualifier")
    if not qualifier or not _CHECK_NAME.match(str(qualifier)):
        raise ContractError(
            f"{path}: the {where} needs a snake_case 'qualifier' (it becomes the Dagster check name), got {qualifier!r}"
        )
    blocking = (spec.get("threshold") or {}).get("level", "fail") != "warn"
    return ContractCheck(qualifier, check_type, column, spec.get("name") or where, blocking, spec)


@cache
def _soda_schema() -> dict:
    schema = resources.files("soda_core.contracts").joinpath("soda_data_contract_json_schema_1_0_0.json")
    return json.loads(schema.read_text())
