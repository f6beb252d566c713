"""Datasets (config group ``dataset``): ``create_dataset(cfg)`` builds one by ``cfg.name``."""

from rrx.errors import RRXError
from rrx.registry import Registry

DATASETS = Registry("dataset", __name__)
register_dataset = DATASETS.register


def create_dataset(cfg):
    return DATASETS.get(cfg.name)(cfg)


def list_datasets() -> list[str]:
    return DATASETS.names()


def check_classes(found: list[str], expected: list[str], where: str) -> None:
    """Stop unless the class names ``found`` at ``where`` equal the training classes ``expected`` (same names,
    same order: label k is the k-th name), naming the missing and unexpected ones."""
    found, expected = list(found), list(expected)
    if found == expected:
        return
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    order = "" if missing or extra else f"; same names in another order: {found}"
    raise RRXError(f"{where}: classes differ from the training classes (missing {missing}, unexpected {extra}{order}); "
                   "every variation must have the training classes, or its labels shift")


def data_report(dataset) -> dict:
    """What ``metrics.json`` records about the data: the samples skipped as unreadable, per folder."""
    skipped = getattr(dataset, "skipped", {})
    return {"skipped": {folder: len(reasons) for folder, reasons in skipped.items()}, "skipped_files": skipped}

