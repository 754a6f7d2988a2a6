"""All landed datasets of the code location, checked together, and which one a landed name belongs to."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import dagster as dg
from dagster.components.core.component_tree import ComponentTree

from platform_assets.datasets.component import DatasetError, LandedDataset
from platform_assets.settings import DEFAULT_DEFS_DIR as DEFS
from platform_assets.settings import Settings


@dataclass(frozen=True)
class Datasets:
    tree: ComponentTree
    all: tuple[LandedDataset, ...]

    def for_name(self, name: str) -> LandedDataset | None:
        """The dataset a landed file name belongs to (its pattern's shape; the name may still be invalid)."""
        return next((d for d in self.all if d.pattern.matches(name)), None)

    @property
    def expected_names(self) -> str:
        return " or ".join(d.pattern.shown for d in self.all)

    def assets_and_checks(self) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
        """Each dataset's raw asset and its contract's checks, as its component builds them."""
        defs = self.tree.build_defs()
        return list(defs.assets), list(defs.asset_checks)


def load_datasets(folder: Path | None = None) -> Datasets:
    """Every ``defs.yaml`` under the defs folder (``PLATFORM_DEFS_DIR``, by default ``platform_assets/defs``).

    Raises ``DatasetError`` (or Dagster's own error for a field of the wrong kind) naming file and line.
    """
    folder = (folder or Settings.from_env().defs_dir).resolve()
    tree = ComponentTree.from_module(defs_module=_as_module(folder), project_root=folder.parent)
    datasets = tuple(sorted(tree.get_all_components(of_type=LandedDataset), key=lambda d: d.table))
    _check_together(datasets)
    return Datasets(tree, datasets)


def _as_module(folder: Path) -> ModuleType:
    """The defs folder as the Python package Dagster's component tree walks (it may live anywhere)."""
    if folder == DEFS:
        import platform_assets.defs

        return platform_assets.defs
    name = f"platform_defs_{hashlib.sha256(str(folder).encode()).hexdigest()[:12]}"
    if name not in sys.modules:
        module = ModuleType(name)
        module.__file__, module.__path__ = str(folder / "__init__.py"), [str(folder)]
        sys.modules[name] = module
    return sys.modules[name]


def _check_together(datasets: tuple[LandedDataset, ...]) -> None:
    tables = {}
    for dataset in datasets:
        if dataset.table in tables:
            raise DatasetError(dataset.where("table"), f"{dataset.table} is declared by {tables[dataset.table]} too")
        tables[dataset.table] = dataset.where("table")
    for dataset in datasets:
        for other in datasets:
            clash = next((name for name in other.pattern.examples() if dataset.pattern.matches(name)), None)
            if other is not dataset and clash is not None:
                raise DatasetError(dataset.where("files"), (
                    f"its pattern {dataset.files.pattern} takes {clash}, which {other.where('files')} "
                    f"({other.files.pattern}) takes too: each file name must belong to one dataset"))
        for key in dataset.loads_after:
            if key not in {d.asset_key.to_user_string() for d in datasets}:
                raise DatasetError(dataset.where("loads_after"), f"{key} is not a landed dataset of this code location")
