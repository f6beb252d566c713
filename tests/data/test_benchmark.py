"""Every registered dataset is a ``rrx.data.base.Benchmark``: built on tiny data, each answers the whole contract."""

from pathlib import Path

import pytest
import torch
from fixtures.in9 import write_in9
from fixtures.isic import write_isic
from fixtures.mnist import write_mnist
from fixtures.rival10 import write_rival10
from fixtures.scgm import write_scgm
from fixtures.vision import write_cifar10, write_image_folder, write_stl10
from fixtures.waterbirds import write_waterbirds
from hydra import compose, initialize_config_module
from torch.utils.data import Dataset

from rrx.data import create_dataset, data_report, list_datasets
from rrx.data.base import Benchmark
from rrx.errors import RRXError

SMALL = {  # dataset -> (overrides, a function writing its tiny root (None: embedded))
    "synthetic": (
        ["dataset.image_size=32", "dataset.train_per_class=2", "dataset.val_per_class=2", "dataset.num_classes=3"],
        None,
    ),
    "in9": (["dataset.image_size=32", "dataset.num_workers=0"], lambda tmp: write_in9(tmp, per_class=2, size=32)),
    "rival10": (["dataset.image_size=16"], write_rival10),
    "image_folder": (
        ["dataset.num_classes=3", "dataset.image_size=16", "dataset.num_workers=0"],
        lambda tmp: write_image_folder(tmp) and tmp,
    ),
    "cifar10": ([], lambda tmp: write_cifar10(tmp)["folder"]),
    "stl10": ([], lambda tmp: write_stl10(tmp)["folder"]),
    "decoy_mnist": ([], write_mnist),
    "color_mnist": ([], write_mnist),
    "toy_rules": (["dataset.train_size=10", "dataset.test_size=10"], None),
    "textures": (["dataset.train_size=10", "dataset.test_size=10"], None),
    "isic": (["dataset.image_size=16", "dataset.num_workers=0"], lambda tmp: write_isic(tmp / "ISIC")),
    "scgm": (["dataset.image_size=16"], write_scgm),
    "waterbirds": (["dataset.image_size=16"], lambda tmp: write_waterbirds(tmp / "waterbirds")),
}


def _benchmark(name: str, tmp_path: Path) -> Benchmark:
    overrides, write = SMALL[name]
    overrides = [f"dataset={name}", *overrides] + (
        [f"dataset.cache_dir={tmp_path / 'cache'}"] if name == "synthetic" else []
    )
    if write is not None:
        overrides.append(f"dataset.root={write(tmp_path)}")
    with initialize_config_module("rrx.conf", version_base="1.3"):
        return create_dataset(compose("train", overrides=overrides).dataset)


def test_every_registered_dataset_is_listed_here():
    assert sorted(SMALL) == list_datasets()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_registered_dataset_is_a_benchmark(name, tmp_path):
    dataset = _benchmark(name, tmp_path)
    assert isinstance(dataset, Benchmark) and dataset.name == name
    train = dataset.train_set(masks=dataset.has_masks)
    assert isinstance(train, Dataset) and len(train) > 0
    x, y, *m = train[0]
    assert x.ndim == 3 and len(dataset.mean) == len(dataset.std) == x.shape[0] and 0 <= int(y) < dataset.num_classes
    assert len(m) == int(dataset.has_masks)
    assert (
        isinstance(dataset.classes, list) and len(dataset.classes) == dataset.num_classes
    )  # listed with the training set
    assert dataset.image_size is None or isinstance(dataset.image_size, int)
    assert dataset.masks_layout is None or isinstance(dataset.masks_layout, str)
    assert dataset.root is None or isinstance(dataset.root, Path)
    variations = dataset.variations()
    assert variations[0] == "original"
    for variation in variations:
        assert len(dataset.variation_set(variation)[0]) == 2  # (x, y) without masks
    with pytest.raises(RRXError):
        dataset.variation_set("no such variation")
    dataset.expect_classes(list(dataset.classes), f"dataset {name}")
    spacing = dataset.spacing("original")
    assert spacing is None or spacing.shape == (len(dataset.variation_set("original")), 2)
    val = dataset.variation_set("original", masks=dataset.has_masks)
    info = dataset.describe_split(train, val)
    assert info["train_images"] == len(train) and info["val_images"] == len(val)
    assert data_report(dataset) == {"skipped": {}, "skipped_files": {}}


@pytest.mark.parametrize("name", ["synthetic", "in9", "cifar10", "textures"])
def test_other_classes_than_a_checkpoints_stop(name, tmp_path):
    classes = list(
        _benchmark(name, tmp_path / "a").train_set(masks=False).classes
        if name in ("synthetic", "in9")
        else _benchmark(name, tmp_path / "a").classes
    )
    dataset = _benchmark(name, tmp_path / "b")
    with pytest.raises(RRXError, match="classes differ from the training classes"):
        dataset.expect_classes([*classes[1:], "other"], "the checkpoint")
        dataset.train_set(masks=False)  # a folder dataset checks each folder as it lists it


@pytest.mark.parametrize("name", ["synthetic", "toy_rules", "textures", "scgm"])
def test_a_dataset_without_an_imagenet_map_says_so(name, tmp_path):
    with pytest.raises(RRXError, match=f"dataset={name} has no mapping from ImageNet-1k classes"):
        _benchmark(name, tmp_path).imagenet_label_map()


def test_imagenet_maps_of_in9_and_rival10(tmp_path):
    with pytest.raises(
        RRXError, match="dataset=rival10: no ImageNet-1k class maps to"
    ):  # the fixture's wnids are made up
        _benchmark("rival10", tmp_path / "r").imagenet_label_map("wordnet")
    in9 = _benchmark("in9", tmp_path / "i")
    label_map, map_name = in9.imagenet_label_map("wordnet")  # no folder listed yet: the classes are not known
    assert map_name == "wordnet" and label_map.shape == (1000,) and torch.equal(label_map.unique(), torch.arange(-1, 9))
