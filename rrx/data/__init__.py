"""Datasets (config group ``dataset``): ``create_dataset(cfg)`` builds one by ``cfg.name``, a ``Benchmark``
(``rrx.data.base``). Each is registered with the dataclass of its keys (``register_dataset(name, config=...)``, a
subclass of ``rrx.data.base.DatasetConfig``): the option ``dataset=<name>``, its defaults, ranges and choices."""

from rrx.data.base import Benchmark
from rrx.registry import Registry

DATASETS = Registry("dataset", __name__)
register_dataset = DATASETS.register


def create_dataset(cfg) -> Benchmark:
    """The dataset ``cfg.name`` for ``cfg`` (a composed ``dataset`` config or a dict of some of its keys), after its
    keys are checked (``rrx.config.typed``)."""
    from rrx.config import typed

    factory = DATASETS.get(cfg["name"])
    cfg = typed("dataset", cfg)
    dataset = factory(cfg)
    if not isinstance(dataset, Benchmark):
        raise TypeError(f"dataset {cfg.name!r} returned a {type(dataset).__name__}, not a rrx.data.base.Benchmark")
    return dataset


def list_datasets() -> list[str]:
    return DATASETS.names()


def data_report(dataset: Benchmark) -> dict:
    """What ``metrics.json`` records about the data: the samples skipped as unreadable, per folder."""
    skipped = dict(dataset.skipped)
    return {"skipped": {folder: len(reasons) for folder, reasons in skipped.items()}, "skipped_files": skipped}
