"""Datasets (config group ``dataset``): ``create_dataset(cfg)`` builds one by ``cfg.name``."""

from rrx.registry import Registry

DATASETS = Registry("dataset", __name__)
register_dataset = DATASETS.register


def create_dataset(cfg):
    return DATASETS.get(cfg.name)(cfg)


def list_datasets() -> list[str]:
    return DATASETS.names()

