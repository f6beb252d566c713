"""Datasets (config group ``dataset``): ``create_dataset(cfg)`` builds one by ``cfg.name``."""

from rrx.registry import Registry

DATASETS = Registry("dataset")
register_dataset = DATASETS.register


def create_dataset(cfg):
    return DATASETS.get(cfg.name)(cfg)


def list_datasets() -> list[str]:
    return DATASETS.names()


from rrx.data import background  # noqa: E402,F401  (registers the entries)
