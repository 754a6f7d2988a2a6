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

import dagster as dg
import jsonschema
import yaml

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

    @property
    def table(self) -> str:
        return ".".join(self.dataset.split("/")[1:])

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(self.dataset.split("/")[1:])


def load_contract(path: Path) -> Contract:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ContractError(f"{path}: cannot be read as YAML: {error}") from None
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
                    VERIFIED_VARIABLE in (document.get("variables") or {}))


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
