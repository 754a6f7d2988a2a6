"""Landed datasets, declared: the ``LandedDataset`` component and the file-name patterns it uses.

``load_datasets`` reads every ``defs.yaml`` of the code location's defs folder
(``platform_assets/defs/``) and checks them together: each landed name must belong to one
dataset, and what a dataset waits for must exist.
"""

from platform_assets.datasets.component import DatasetError, LandedDataset
from platform_assets.datasets.registry import Datasets, load_datasets

__all__ = ["DatasetError", "Datasets", "LandedDataset", "load_datasets"]
