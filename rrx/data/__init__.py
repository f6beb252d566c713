"""Datasets (config group ``dataset``): ``create_dataset(cfg)`` builds one by ``cfg.name``."""

from rrx.errors import RRXError
from rrx.registry import Registry

DATASETS = Registry("dataset", __name__)
register_dataset = DATASETS.register


def create_dataset(cfg):
    return DATASETS.get(cfg.name)(cfg)


def list_datasets() -> list[str]:
    return DATASETS.names()


def check_classes(dataset, expected: list[str], source: str) -> None:
    """Stop unless ``dataset``'s class names equal ``expected`` (same names, same order: the labels)."""
    if list(dataset.classes) != list(expected):
        raise RRXError(f"dataset {dataset.name} has classes {list(dataset.classes)}, the {source} has {list(expected)}; "
                       "labels would not match")


def data_report(dataset) -> dict:
    """What ``metrics.json`` records about the data: the samples skipped as unreadable, per folder."""
    skipped = getattr(dataset, "skipped", {})
    return {"skipped": {folder: len(reasons) for folder, reasons in skipped.items()}, "skipped_files": skipped}

