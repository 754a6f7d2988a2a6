"""``LandedDataset``: one kind of landed file, declared in a ``defs.yaml``, loaded by the platform.

The YAML is the interface (``docs/datasets.md`` has a full example): the table and what
it means, who owns it, the file names it takes (a pattern with named parts), whether a
file replaces its own rows (one partition per file) or the whole table, the columns
and their DuckDB types, how to parse the files, which column must lie within the
dates a file's name promises, its Soda contract, how fresh it must stay and what it
waits for. Everything is checked when the code location loads, and a problem names
the file and line.

``build_defs`` gives the raw asset (``assets/raw.py`` loads any dataset the same
way) and its contract's checks; the landing and recheck sensors are built over all
datasets (``automation/``), so none of the machinery knows a dataset by name.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import dagster as dg
from pydantic import Field, PrivateAttr, field_validator

from platform_assets.datasets.patterns import FilePattern, PatternError
from platform_assets.datasets.scaffold import LandedDatasetScaffolder
from platform_assets.settings import Settings

# DuckDB types a column may have: what the strict CSV reader can parse into, named as DuckDB names them.
COLUMN_TYPES = ("BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "DOUBLE", "FLOAT", "VARCHAR", "DATE",
                "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIME")
_DECIMAL = re.compile(r"DECIMAL\((\d{1,2}),\s*(\d{1,2})\)")
_TABLE = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]*")
LINEAGE_COLUMNS = {"_source_file": ("VARCHAR", "Landed file the row was loaded from."),
                   "_loaded_at": ("TIMESTAMP WITH TIME ZONE", "When the row was loaded.")}


class Column(dg.Model):
    """A column of the file, in the table under the same name."""

    name: Annotated[str, Field(description="As in the file's header.")]
    type: Annotated[str, Field(description=f"DuckDB type: {', '.join(COLUMN_TYPES)} or DECIMAL(p, s).")]
    description: str = ""
    required: Annotated[bool, Field(description="Every row must have a value (a blocking check).")] = False

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _COLUMN.fullmatch(name) or name in LINEAGE_COLUMNS:
            raise ValueError(f"{name!r} is not a column name the platform takes (letters, digits, _ and spaces; "
                             f"not {' or '.join(LINEAGE_COLUMNS)}, which it adds)")
        return name

    @field_validator("type")
    @classmethod
    def _type(cls, kind: str) -> str:
        normalized = " ".join(kind.upper().split())
        decimal = _DECIMAL.fullmatch(normalized)
        if decimal:  # as DuckDB names it, which is what the schema check compares
            return f"DECIMAL({int(decimal.group(1))},{int(decimal.group(2))})"
        if normalized not in COLUMN_TYPES:
            raise ValueError(f"unknown column type {kind!r}; known: {', '.join(COLUMN_TYPES)}, DECIMAL(p, s)")
        return normalized


class Files(dg.Model):
    pattern: Annotated[str, Field(description="File names it takes, e.g. sales_{first:date}[_{last:date}].csv.")]
    each_file: Annotated[Literal["replaces_its_rows", "replaces_the_table"], Field(
        description="replaces_its_rows: one partition per file, a new version of a file replaces that file's rows; "
                    "replaces_the_table: a file is the whole table (a master).")]

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, pattern: str) -> str:
        try:
            FilePattern(pattern)
        except PatternError as error:
            raise ValueError(str(error)) from None
        return pattern


class Parse(dg.Model):
    """How to read the files; strict: a file that does not read exactly so is quarantined."""

    delimiter: str = ","
    quote: str = '"'
    header: Annotated[bool, Field(description="The first line names the columns (in any order).")] = True
    date_format: str = "%Y-%m-%d"
    decimal_separator: Literal[".", ","] = "."
    encoding: Literal["utf-8", "latin-1"] = "utf-8"

    @field_validator("delimiter", "quote")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1 or value in "\r\n":
            raise ValueError(f"{value!r}: one character, not a line break")
        return value


@dg.scaffold_with(LandedDatasetScaffolder)
class LandedDataset(dg.Component, dg.Model, dg.Resolvable):
    """A kind of file that lands in landing/ and becomes a raw table, with its checks."""

    table: Annotated[str, Field(description="schema.table in the lake, e.g. raw.sales; the asset is raw/sales.")]
    description: str
    owners: list[str] = []
    tags: dict[str, str] = {}
    files: Files
    columns: list[Column]
    key: Annotated[list[str], Field(
        description="Columns that identify a row, shown with the table's schema; a duplicate check in the "
                    "contract enforces it.")] = []
    parse: Parse = Parse()
    dates_in: Annotated[str | None, Field(
        description="The date column whose values must lie within the dates the file's name promises.")] = None
    contract: Annotated[str, Field(description="Its Soda contract, beside this file.")] = "contract.yml"
    freshness_hours: Annotated[float | Literal["default"] | None, Field(
        description="Stale when no file has loaded for this long; 'default': PLATFORM_FRESHNESS_HOURS (26 h); "
                    "left out: never stale (a master that changes rarely).")] = None
    loads_after: Annotated[list[str], Field(
        description="Assets whose data its files need (its checks read them): its files wait until they "
                    "have loaded, and its failed files (or its table) are checked again when they change.")] = []

    # where its defs.yaml is: set when the component is loaded (contract paths, error messages)
    _folder: Path | None = PrivateAttr(default=None)

    @field_validator("table")
    @classmethod
    def _table(cls, table: str) -> str:
        if not _TABLE.fullmatch(table):
            raise ValueError(f"{table!r}: expected schema.table in lower case, e.g. raw.sales")
        return table

    @classmethod
    def load(cls, attributes, context: dg.ComponentLoadContext) -> LandedDataset:
        dataset = super().load(attributes, context)
        dataset._folder = context.path
        dataset.validate_columns()
        return dataset

    def validate_columns(self) -> None:
        """The columns the other fields name exist, once each."""
        names = [c.name for c in self.columns]
        repeated = sorted({n for n in names if names.count(n) > 1})
        problems = [f"columns: {', '.join(repeated)} declared twice"] if repeated else []
        problems += [f"key: {c} is not a declared column" for c in self.key if c not in names]
        if self.dates_in is not None:
            dates = {c.name: c.type for c in self.columns}
            if self.dates_in not in dates:
                problems.append(f"dates_in: {self.dates_in} is not a declared column")
            elif dates[self.dates_in] != "DATE":
                problems.append(f"dates_in: {self.dates_in} is {dates[self.dates_in]}, not DATE")
            elif not self.pattern.date_parts:
                problems.append(f"dates_in: the pattern {self.files.pattern} has no date for {self.dates_in} to lie in")
        if problems:
            raise DatasetError(self.where("columns"), "; ".join(problems))

    # --- what the machinery reads ---

    @property
    def name(self) -> str:
        """The dataset's name: its table's (the ledger's ``kind``, the partitions' prefix)."""
        return self.table.split(".")[1]

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(self.table.split("."))

    @property
    def per_file(self) -> bool:
        return self.files.each_file == "replaces_its_rows"

    @property
    def freshness_policy(self) -> dg.FreshnessPolicy | None:
        if self.freshness_hours is None:
            return None
        hours = Settings.from_env().freshness_hours if self.freshness_hours == "default" else self.freshness_hours
        return dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=hours))

    @cached_property
    def pattern(self) -> FilePattern:
        return FilePattern(self.files.pattern)

    @cached_property
    def partitions_def(self) -> dg.DynamicPartitionsDefinition | None:
        return dg.DynamicPartitionsDefinition(name=f"{self.name}_files") if self.per_file else None

    @property
    def contract_path(self) -> Path:
        return (self._folder or Path(".")) / self.contract

    @property
    def defs_yaml(self) -> Path:
        return (self._folder or Path(".")) / "defs.yaml"

    def where(self, key: str) -> str:
        """``defs.yaml:<line>`` of a top-level key, for messages about it."""
        try:
            lines = self.defs_yaml.read_text().splitlines()
        except OSError:
            return str(self.defs_yaml)
        line = next((i for i, text in enumerate(lines, 1) if text.strip().startswith(f"{key}:")), None)
        return f"{self.defs_yaml}:{line}" if line else str(self.defs_yaml)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        from platform_assets.assets.raw import landed_asset
        from platform_assets.quality.soda_checks import dataset_checks

        asset = landed_asset(self)
        return dg.Definitions(assets=[asset], asset_checks=[dataset_checks(self, asset)])


class DatasetError(ValueError):
    """A dataset declaration the platform cannot use; the message starts with the file and line."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}")
