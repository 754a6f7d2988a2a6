"""``dg scaffold defs platform_assets.datasets.LandedDataset <name>``: a new dataset's two files, to fill in.

Writes ``defs/<name>/defs.yaml``, every field there with a comment saying what it means,
and a starter Soda contract beside it. Both load as they are (``dg check defs``), so the
next step is to describe the real file: its name pattern, its columns, its rules.
"""

from __future__ import annotations

import re

import dagster as dg

DEFS_YAML = """\
# A landed dataset: files named like `files.pattern` that land in landing/ become the table `table`.
# Every field is checked when the code location loads (`dg check defs`); docs/datasets.md explains each.
type: platform_assets.datasets.LandedDataset

attributes:
  table: raw.{name}              # schema.table in the lake; the asset is raw/{name}
  description: |
    What one row is, where the files come from, what they are for.
  owners: ["team:data-platform"]   # who is told when its checks fail (and shown in the UI)
  tags: {{domain: {name}}}
  files:
    # the file names it takes: {{part:date}} is a day (YYYY-MM-DD), {{part:word}} letters, digits, - and _;
    # [...] is optional. A name no dataset takes is quarantined, naming the patterns it could have had.
    pattern: "{name}_{{day:date}}.csv"
    each_file: replaces_its_rows  # one partition per file; or replaces_the_table (a master file)
  columns:                       # as in the file's header; types are DuckDB's
    - {{name: Day, type: DATE, required: true, description: "The day the row describes."}}
    - {{name: Value, type: DOUBLE, description: "What was measured."}}
  key: [Day]                     # what identifies a row within a file
  dates_in: Day                  # this column must lie within the day(s) the file's name says
  parse: {{delimiter: ",", header: true, date_format: "%Y-%m-%d", decimal_separator: ".", encoding: utf-8}}
  contract: contract.yml         # its Soda data contract, beside this file
  # freshness_hours: default     # stale after PLATFORM_FRESHNESS_HOURS (26 h) without a new file
  # loads_after: [raw/stores]    # its checks read that table: wait for it, re-check when it changes
"""

CONTRACT = """\
# Soda data contract of raw.{name}, checked on each file as it loads; a failing check that is not
# `level: warn` keeps the file's rows out of what is built on it and alerts the owners.
# The platform adds the dataset, a schema check of the declared columns, a "not missing" check per
# required column and (with dates_in) `dates_within_file_name`. ${{var.partition}} is the file's name.

checks:
- row_count:
    qualifier: {name}_file_not_empty
    name: "A file holds at least one row."
    threshold: {{must_be_greater_than: 0}}

columns:
- name: Value
  checks:
  - invalid:
      qualifier: value_not_negative
      name: "Value is never negative."
      valid_min: 0
"""


class LandedDatasetScaffolder(dg.Scaffolder):
    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        name = re.sub(r"[^a-z0-9_]", "_", request.target_path.name.lower()).strip("_") or "dataset"
        request.target_path.mkdir(parents=True, exist_ok=True)
        (request.target_path / "defs.yaml").write_text(DEFS_YAML.format(name=name))
        (request.target_path / "contract.yml").write_text(CONTRACT.format(name=name))
