"""CIFAR-10, STL-10 and image-folder datasets read from files the fixture wrote, against the arrays it wrote."""

import json
import pickle

import numpy as np
import pytest
import torch
from fixtures.runner import one_line_error, rrx
from fixtures.vision import CIFAR_NAMES, FOLDER_CLASSES, write_cifar10, write_image_folder, write_stl10
from hydra import compose, initialize_config_module

from rrx.config import check
from rrx.data import create_dataset
from rrx.data.in9 import BackgroundDataset
from rrx.data.patch_task import PatchTask
from rrx.data.rival10 import Rival10
from rrx.data.tensor_task import TensorTask
from rrx.errors import RRXError


def _dataset(name, *overrides):
    with initialize_config_module("rrx.conf", version_base="1.3"):
        cfg = compose("train", overrides=[f"dataset={name}", *overrides])
    check(cfg)  # ranges and choices, as the command line checks them
    return create_dataset(cfg.dataset)


def _as_written(x: torch.Tensor) -> np.ndarray:
    """A loader's (3, H, W) image in [0, 1] as the fixture's (H, W, 3) uint8."""
    return (x.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


def _check_split(data, images, labels):
    assert len(data) == len(labels)
    for i in range(len(data)):
        x, y = data[i]
        assert x.dtype == torch.float32 and x.shape == (3, *images.shape[1:3])
        assert np.array_equal(_as_written(x), images[i]) and y == labels[i]


@pytest.mark.parametrize("protocol", [2, 5])
@pytest.mark.parametrize("at_folder", [False, True])
def test_cifar10_decodes_to_the_pixels_labels_and_names_written(tmp_path, protocol, at_folder):
    written = write_cifar10(tmp_path, protocol=protocol)
    root = written["folder"] if at_folder else tmp_path
    data = _dataset("cifar10", f"dataset.root={root}")
    assert data.classes == written["classes"] and data.num_classes == 10 and data.has_masks is False
    assert (data.image_size, data.mean) == (32, [0.4914, 0.4822, 0.4465])
    _check_split(data.train_set(masks=False), *written["train"])  # the five batches in order
    _check_split(data.variation_set("original"), *written["test"])


def test_stl10_decodes_column_major_planes_and_labels_from_one(tmp_path):
    written = write_stl10(tmp_path)
    data = _dataset("stl10", f"dataset.root={tmp_path}")
    assert data.classes == written["classes"] and data.has_masks is False
    _check_split(data.train_set(masks=False), *written["train"])
    _check_split(data.variation_set("original"), *written["test"])
    assert _dataset("stl10", f"dataset.root={written['folder']}").classes == written["classes"]
    assert written["train"][0][0, 0, 1, 0] != written["train"][0][0, 1, 0, 0]  # the fixture can tell rows from columns


def test_other_image_size_resizes(tmp_path):
    write_cifar10(tmp_path)
    x, _ = _dataset("cifar10", f"dataset.root={tmp_path}", "dataset.image_size=48").variation_set("original")[0]
    assert x.shape == (3, 48, 48)


@pytest.mark.parametrize("name, writer", [("cifar10", write_cifar10), ("stl10", write_stl10)])
def test_no_masks_and_only_the_original_variation(tmp_path, name, writer):
    writer(tmp_path)
    data = _dataset(name, f"dataset.root={tmp_path}")
    for request in (lambda: data.train_set(masks=True), lambda: data.variation_set("original", masks=True)):
        with pytest.raises(RRXError, match=f"dataset {name} has no object masks .images and labels only."):
            request()
    with pytest.raises(
        RRXError, match=f"dataset {name} has only the 'original' variation .its test split., not 'mixed_rand'"
    ):
        data.variation_set("mixed_rand")


@pytest.mark.parametrize("name, folder", [("cifar10", "cifar-10-batches-py"), ("stl10", "stl10_binary")])
def test_missing_root_names_the_path_layout_and_no_download(tmp_path, name, folder):
    with pytest.raises(
        RRXError, match=f"dataset={name} needs dataset.root=<folder holding {folder}/>.*never downloads"
    ):
        _dataset(name)
    with pytest.raises(
        RRXError, match=f"dataset.root={tmp_path / 'nope'} does not exist .expected <root>/{folder}/.*never downloads"
    ):
        _dataset(name, f"dataset.root={tmp_path / 'nope'}")
    (tmp_path / folder).mkdir()
    with pytest.raises(RRXError, match=f"{tmp_path / folder} lacks .*never downloads"):
        _dataset(name, f"dataset.root={tmp_path}")


def test_cifar10_missing_and_corrupt_files(tmp_path):
    folder = write_cifar10(tmp_path)["folder"]
    (folder / "data_batch_3").unlink()
    with pytest.raises(RRXError, match=f"{folder} lacks data_batch_3 "):
        _dataset("cifar10", f"dataset.root={tmp_path}")
    (folder / "data_batch_3").write_bytes(b"\x80\x02}q\x00(X\x04\x00")  # a truncated pickle
    with pytest.raises(RRXError, match=f"cannot read {folder / 'data_batch_3'} as a CIFAR-10 pickle"):
        _dataset("cifar10", f"dataset.root={tmp_path}")
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(RRXError, match=r"data_batch_3: 'data' is \(2, 3000\) uint8, not \(N, 3072\) uint8"):
        _dataset("cifar10", f"dataset.root={tmp_path}")
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}))
    with pytest.raises(RRXError, match="data_batch_3: 'labels' must be 2 integers in 0..9"):
        _dataset("cifar10", f"dataset.root={tmp_path}")
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}))
    with pytest.raises(RRXError, match=r"data_batch_3 lacks the key\(s\) \['labels'\]"):
        _dataset("cifar10", f"dataset.root={tmp_path}")


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def test_cifar10_pickle_that_would_run_code_is_refused(tmp_path):
    folder = write_cifar10(tmp_path)["folder"]
    marker = tmp_path / "created_by_unpickling"
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": _Evil(marker)}))
    with pytest.raises(RRXError, match="refers to io.open, which a CIFAR-10 file never holds"):
        _dataset("cifar10", f"dataset.root={tmp_path}")
    assert not marker.exists()


def test_cifar10_num_classes_must_match_the_meta(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(RRXError, match=r"batches.meta has 10 classes .*dataset.num_classes=9; set dataset.num_classes"):
        _dataset("cifar10", f"dataset.root={tmp_path}", "dataset.num_classes=9")


def test_stl10_corrupt_files(tmp_path):
    folder = write_stl10(tmp_path)["folder"]
    good = (folder / "test_X.bin").read_bytes()
    (folder / "test_X.bin").write_bytes(good[:-5])
    with pytest.raises(
        RRXError, match=f"{folder / 'test_X.bin'} holds {len(good) - 5} bytes, not a whole number of 3x96x96"
    ):
        _dataset("stl10", f"dataset.root={tmp_path}")
    (folder / "test_X.bin").write_bytes(good)
    (folder / "test_y.bin").write_bytes(bytes([1, 2, 3]))
    with pytest.raises(RRXError, match="test_y.bin holds 3 labels for the 4 images"):
        _dataset("stl10", f"dataset.root={tmp_path}")
    (folder / "test_y.bin").write_bytes(bytes([1, 0, 11, 10]))  # 0-based labels or an 11th class
    with pytest.raises(RRXError, match=r"labels must be 1..10 on disk, found \[0, 1, 10, 11\]"):
        _dataset("stl10", f"dataset.root={tmp_path}")


def _folder(root, *overrides):
    return _dataset(
        "image_folder", f"dataset.root={root}", "dataset.num_classes=3", "dataset.image_size=16", *overrides
    )


def test_image_folder_images_labels_and_masks(tmp_path):
    written = write_image_folder(tmp_path)
    data = _folder(tmp_path)
    assert data.classes == FOLDER_CLASSES and data.has_masks is True
    for split, got in (("train", data.train_set(masks=True)), ("val", data.variation_set("original", masks=True))):
        assert len(got) == len(written[split]) == 3 * {"train": 3, "val": 2}[split]  # hidden files and folders ignored
        for i, (image, label, mask, path) in enumerate(written[split]):
            x, y, m = got[i]
            assert got.samples[i][0] == path and y == label
            assert m.shape == (1, 16, 16) and torch.equal(m[0].bool(), torch.from_numpy(mask))
            error = np.abs(_as_written(x).astype(int) - image).max()
            assert error <= (12 if path.suffix == ".jpg" else 0)  # a JPEG at quality 100 is close, not exact
    x, y = data.train_set(masks=False)[0]
    assert np.array_equal(_as_written(x), written["train"][0][0]) and y == 0


def test_image_folder_resizes_images_and_masks(tmp_path):
    written = write_image_folder(tmp_path)
    x, _, m = _folder(tmp_path, "dataset.image_size=8").train_set(masks=True)[0]
    assert x.shape == (3, 8, 8) and torch.equal(m[0].bool(), torch.from_numpy(written["train"][0][2][::2, ::2]))


def test_image_folder_without_masks(tmp_path):
    write_image_folder(tmp_path, masks=False)
    data = _folder(tmp_path)
    assert data.has_masks is False and len(data.train_set(masks=False)) == 9
    with pytest.raises(
        RRXError, match=r"dataset image_folder has no object masks \(expected <root>/masks/<split>/<class>/<name>"
    ):
        data.variation_set("original", masks=True)
    with pytest.raises(RRXError, match="only the 'original' variation"):
        data.variation_set("only_fg", masks=True)


def test_image_folder_missing_mask_folder_or_file(tmp_path):
    write_image_folder(tmp_path)
    (tmp_path / "masks" / "val").rename(tmp_path / "masks" / "test")
    data = _folder(tmp_path)
    with pytest.raises(RRXError, match=f"no object masks for split val: missing folder {tmp_path / 'masks' / 'val'}"):
        data.variation_set("original", masks=True)
    (tmp_path / "masks" / "train" / "dog" / "img0.png").unlink()
    train = data.train_set(masks=True)
    expected = tmp_path / "masks" / "train" / "dog" / "img0"
    with pytest.raises(RRXError, match=f"no mask for image .*dog/img0.png: expected {expected}.npy or {expected}.png"):
        train[3]


def test_image_folder_bad_input(tmp_path):
    with pytest.raises(RRXError, match="dataset=image_folder needs dataset.root"):
        _dataset("image_folder")
    with pytest.raises(RRXError, match="does not exist .expected <root>/<split>/<class>"):
        _folder(tmp_path / "nope")
    with pytest.raises(RRXError, match=f"has neither {tmp_path / 'train'} nor {tmp_path / 'val'}"):
        _folder(tmp_path)
    write_image_folder(tmp_path, masks=False)
    with pytest.raises(RRXError, match=r"train has 3 classes \['cat', 'dog', 'fish'\], dataset.num_classes=None"):
        _dataset("image_folder", f"dataset.root={tmp_path}")
    (tmp_path / "val" / "fish").rename(tmp_path / "val" / "shark")
    with pytest.raises(RRXError, match=r"val: classes differ .*missing \['fish'\], unexpected \['shark'\]"):
        _folder(tmp_path)
    (tmp_path / "val" / "shark").rename(tmp_path / "val" / "fish")
    (tmp_path / "train" / "dog" / "img2.png").write_bytes(b"not a png")
    with pytest.raises(RRXError, match="cannot read image .*img2.png"):
        _folder(tmp_path).train_set(masks=False)[5]
    skipping = _folder(tmp_path, "dataset.on_bad_sample=skip")
    assert len(skipping.train_set(masks=False)) == 8 and len(skipping.skipped["train"]) == 1


def test_image_folder_test_split_alone_serves_an_evaluation(tmp_path):
    write_image_folder(tmp_path, per_class={"test": 2}, masks=False)
    data = _folder(tmp_path, "dataset.test_split=test")
    assert data.classes == FOLDER_CLASSES and len(data.variation_set("original")) == 6
    with pytest.raises(RRXError, match=f"dataset.train_split=train: no folder {tmp_path / 'train'}"):
        data.train_set(masks=False)


def test_datasets_that_always_have_masks_say_so():
    assert all(cls.has_masks is True for cls in (BackgroundDataset, TensorTask, PatchTask, Rival10))


TRAIN = [
    "model=small_cnn",
    "model.width=8",
    "challenge=original",
    "trainer.epochs=1",
    "trainer.batch_size=8",
    "trainer.device=cpu",
    "trainer.progress=false",
]


def _write(name, root):
    """The fixture root of ``name`` and the overrides its run needs (image_folder: masks, so RRDA)."""
    return {
        "cifar10": lambda: (write_cifar10(root), []),
        "stl10": lambda: (write_stl10(root, n_train=10), ["dataset.image_size=32"]),
        "image_folder": lambda: (
            write_image_folder(root),
            ["dataset.num_classes=3", "dataset.image_size=16", "dataset.num_workers=0", "method=rrda"],
        ),
    }[name]()[1]


def test_cifar10_trains_through_the_cli(tmp_path):
    extra = _write("cifar10", tmp_path / "data")
    run = tmp_path / "run"
    rrx(
        "train",
        "dataset=cifar10",
        f"dataset.root={tmp_path / 'data'}",
        *TRAIN,
        "trainer.val_fraction=0.2",
        *extra,
        f"hydra.run.dir={run}",
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["run"]["dataset"] == "cifar10" and set(metrics["challenges"]["accuracy"]) == {"original"}
    assert torch.load(run / "checkpoint.pt", weights_only=True)["classes"] == CIFAR_NAMES


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cifar10", "stl10", "image_folder"])
def test_trains_and_evaluates_through_the_cli(tmp_path, name):
    extra = _write(name, tmp_path / "data")
    run = tmp_path / "run"
    rrx("train", f"dataset={name}", f"dataset.root={tmp_path / 'data'}", *TRAIN, *extra, f"hydra.run.dir={run}")
    rrx(
        "evaluate",
        f"checkpoint={run}",
        "challenge=original",
        "trainer.progress=false",
        f"hydra.run.dir={tmp_path / 'eval'}",
    )
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["run"]["dataset"] == name and set(metrics["challenges"]["accuracy"]) == {"original"}


@pytest.mark.slow
def test_cli_refuses_a_method_that_needs_masks_in_one_line(tmp_path):
    write_cifar10(tmp_path / "data")
    result = rrx(
        "train",
        "dataset=cifar10",
        f"dataset.root={tmp_path / 'data'}",
        *TRAIN,
        "method=rrda",
        f"hydra.run.dir={tmp_path / 'run'}",
        check=False,
    )
    one_line_error(result, "dataset cifar10 has no object masks", "method=standard challenge=original")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
