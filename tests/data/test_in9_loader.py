"""The IN-9 layout loader on a fixture written by the test in the real on-disk layout."""

import numpy as np
import pytest
import torch
from PIL import Image

from rrx.data.in9 import IN9Folder, foreground_stem
from rrx.errors import RRXError

CLASSES = ["00_dog", "01_bird", "02_wheeled vehicle"]


@pytest.fixture
def root(tmp_path):
    """bg_challenge/{original,mixed_rand,fg_mask}/val with 2 images per class; image i is uniform grey 10*label+i."""
    base = tmp_path / "bg_challenge"
    for label, name in enumerate(CLASSES):
        for i in range(2):
            stem = f"n0{label}_{i}"
            value = 10 * label + i
            for variation, fname in [("original", f"{stem}.JPEG"), ("mixed_rand", f"fg_{stem}_bg_n09_{i}.JPEG")]:
                folder = base / variation / "val" / name
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(folder / fname, quality=100)
            mask = np.zeros((8, 8), np.uint8)
            mask[: label + 1] = 1  # label+1 object rows
            (base / "fg_mask" / "val" / name).mkdir(parents=True, exist_ok=True)
            np.save(base / "fg_mask" / "val" / name / f"{stem}.npy", mask)
    return base


def test_labels_follow_sorted_class_folders_with_spaces(root):
    data = IN9Folder(root, "original", "val", image_size=8)
    assert data.classes == CLASSES
    assert [y for _, y in data.samples] == [0, 0, 1, 1, 2, 2]
    x, y = data[5]
    assert y == 2 and x.shape == (3, 8, 8)
    assert torch.allclose(x, torch.full_like(x, 21 / 255), atol=1.5 / 255)


def test_masks_of_mixed_images_come_from_their_foreground(root):
    data = IN9Folder(root, "mixed_rand", "val", image_size=8, masks=True)
    for index in range(len(data)):
        _, y, m = data[index]
        assert m.shape == (1, 8, 8)
        assert m.sum().item() == 8 * (y + 1)


def test_resize_keeps_masks_binary(root):
    _, _, m = IN9Folder(root, "original", "val", image_size=16, masks=True)[2]
    assert set(m.unique().tolist()) == {0.0, 1.0}
    assert m.sum().item() == 4 * 8 * 2  # two object rows -> four rows at twice the size


def test_foreground_stem():
    assert foreground_stem("fg_n01_5_bg_n07_9.JPEG") == "n01_5"
    assert foreground_stem("n01_5.JPEG") == "n01_5"


def test_missing_variation_names_the_folder(root):
    with pytest.raises(RRXError, match=r"missing folder .*mixed_same/val"):
        IN9Folder(root, "mixed_same", "val", image_size=8)


def test_missing_root(tmp_path):
    with pytest.raises(RRXError, match="does not exist"):
        IN9Folder(tmp_path / "nope", "original", "val", image_size=8)


def test_mask_of_wrong_size_names_the_file(root):
    bad = root / "fg_mask" / "val" / "01_bird" / "n01_0.npy"
    np.save(bad, np.zeros((4, 4), np.uint8))
    data = IN9Folder(root, "original", "val", image_size=8, masks=True)
    with pytest.raises(RRXError, match=r"n01_0\.npy has size \(4, 4\)"):
        data[2]


def test_missing_mask_names_the_file(root):
    (root / "fg_mask" / "val" / "00_dog" / "n00_1.npy").unlink()
    with pytest.raises(RRXError, match=r"no mask for image .*n00_1\.JPEG"):
        IN9Folder(root, "original", "val", image_size=8, masks=True)[1]


def test_corrupt_image_names_the_file(root):
    (root / "original" / "val" / "00_dog" / "n00_0.JPEG").write_bytes(b"not a jpeg")
    with pytest.raises(RRXError, match=r"cannot read image .*n00_0\.JPEG"):
        IN9Folder(root, "original", "val", image_size=8)[0]


# --- the dataset=in9 config on a fixture in the real layout -------------------------------------

from fixtures.in9 import CLASSES as IN9_CLASSES  # noqa: E402
from fixtures.in9 import object_mask, write_in9  # noqa: E402
from hydra import compose, initialize_config_module  # noqa: E402

from rrx.config import check  # noqa: E402
from rrx.data import create_dataset  # noqa: E402


@pytest.fixture(scope="module")
def in9_root(tmp_path_factory):
    return write_in9(tmp_path_factory.mktemp("in9"))


def _in9(root, *overrides):
    with initialize_config_module("rrx.conf", version_base="1.3"):
        cfg = compose("train", overrides=["dataset=in9", f"dataset.root={root}", "dataset.num_workers=0", *overrides])
    check(cfg)  # ranges and choices, as the command line checks them
    return create_dataset(cfg.dataset)


def _grow(mask):
    """Mask grown by one pixel (3x3 square)."""
    return torch.nn.functional.max_pool2d(mask[None], 3, stride=1, padding=1)[0]


def test_in9_training_masks_are_derived_from_only_fg(in9_root):
    train = _in9(in9_root).train_set(masks=True)
    assert train.classes == IN9_CLASSES and len(train) == 18
    for index in range(18):
        _, y, m = train[index]
        truth = torch.from_numpy(object_mask(y).astype(np.float32))[None]
        # The default threshold keeps the whole object; JPEG ringing may add a one-pixel rim.
        assert (m >= truth).all() and (m <= _grow(truth)).all()
    exact = _in9(in9_root, "dataset.mask_threshold=0.2").train_set(masks=True)
    for index in range(18):
        _, y, m = exact[index]
        assert torch.equal(m[0], torch.from_numpy(object_mask(y).astype(np.float32)))


def test_in9l_has_no_masks(in9_root):
    dataset = _in9(in9_root, "dataset.train_source=in9l")
    assert len(dataset.train_set(masks=False)) == 18
    with pytest.raises(RRXError, match="train_source=in9l has no object masks"):
        dataset.train_set(masks=True)


def test_in9_counts_are_logged_and_a_mismatch_warned(in9_root, caplog):
    caplog.set_level("INFO")
    _in9(in9_root).variation_set("mixed_rand")
    assert "mixed_rand/val: 18 images, per class [2, 2, 2, 2, 2, 2, 2, 2, 2]" in caplog.text
    assert "expected 450 per class" in caplog.text
    caplog.clear()
    dataset = _in9(in9_root, "dataset.val_per_class=2")
    assert dataset.variation_set("mixed_rand") is dataset.variation_set("mixed_rand")  # listed once per run
    assert "expected" not in caplog.text and caplog.text.count("mixed_rand/val: 18 images") == 1


def test_bad_samples_are_skipped_counted_and_named(tmp_path, caplog):
    root = write_in9(tmp_path, per_class=1, size=64)
    (root / "only_fg" / "val" / "01_bird" / "n01_0.JPEG").write_bytes(b"broken")
    with pytest.raises(RRXError, match="cannot read image .*n01_0.JPEG"):
        _in9(root, "dataset.image_size=64").variation_set("only_fg")[1]
    caplog.set_level("INFO")
    data = _in9(root, "dataset.image_size=64", "dataset.on_bad_sample=skip").variation_set("only_fg")
    assert len(data) == 8 and len(data.skipped) == 1
    assert "skipped: cannot read image" in caplog.text and "n01_0.JPEG" in caplog.text
    assert "8 images, per class [1, 0, 1, 1, 1, 1, 1, 1, 1], 1 skipped" in caplog.text


def test_unknown_bad_sample_rule(in9_root):
    with pytest.raises(RRXError, match="dataset.on_bad_sample=ignore; known: error, skip"):
        _in9(in9_root, "dataset.on_bad_sample=ignore")


@pytest.mark.parametrize("size", [8, 12])
def test_preloaded_items_are_the_files_items(root, size):
    """Decoded once into uint8: bit for bit the files' items, resized or not; masks and the attributes the challenges
    read are the loader's."""
    from rrx.data.preload import Preloaded, maybe_preload

    files = IN9Folder(root, "mixed_rand", "val", image_size=size, masks=True)
    held = Preloaded(files, num_workers=0)
    assert held.images.dtype == torch.uint8 and held.masks.dtype == torch.bool
    assert held.samples == files.samples and held.classes == CLASSES and len(held) == 6
    for index in range(6):
        (x, y, m), (x_file, y_file, m_file) = held[index], files[index]
        assert y == y_file and torch.equal(m, m_file) and torch.equal(x, x_file)
    assert maybe_preload(files, size, True, limit_gb=6 * size * size * 4 / 1e9, num_workers=0, desc="t") is not files
    assert maybe_preload(files, size, True, limit_gb=(6 * size * size * 4 - 1) / 1e9, num_workers=0, desc="t") is files
    assert maybe_preload(files, size, True, limit_gb=0, num_workers=0, desc="t") is files


@pytest.fixture
def noisy_root(tmp_path):
    """bg_challenge/original/val: 3 classes x 3 random-noise 10x10 PNGs (lossless), each with a random mask."""
    rng = np.random.default_rng(0)
    base = tmp_path / "bg_challenge"
    for name in CLASSES:
        for i in range(3):
            for sub, suffix in [("original", ".png"), ("fg_mask", ".npy")]:
                (base / sub / "val" / name).mkdir(parents=True, exist_ok=True)
            image = Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8))
            image.save(base / "original" / "val" / name / f"n_{i}.png")
            np.save(base / "fg_mask" / "val" / name / f"n_{i}.npy", rng.integers(0, 2, (10, 10)).astype(np.uint8))
    return base


def test_byte_items_resized_are_the_rounded_bilinear_resize(noisy_root):
    """A resized image's bytes: round(255 x) of the antialiased bilinear resize of its pixels (computed here from the
    PNG); its float item is within half a grey level of resizing the floats k / 255 themselves."""
    import torch.nn.functional as F

    data = IN9Folder(noisy_root, "original", "val", image_size=7, masks=True)
    for index in (0, 4, 8):
        pixels = np.asarray(Image.open(data.samples[index][0]), dtype=np.float64)  # (10, 10, 3)
        resized = F.interpolate(
            torch.from_numpy(pixels).permute(2, 0, 1)[None],
            size=(7, 7),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )[0]
        x, y, m = data.byte_item(index)
        assert x.dtype == torch.uint8 and m.dtype == torch.bool and y == index // 3
        assert (x.double() - resized.round()).abs().max().item() <= 1  # float32 vs float64 at a .5 tie
        assert (x.double() - resized).abs().max().item() <= 0.5 + 1e-3
        assert torch.equal(data[index][0], x.float() / 255) and torch.equal(data[index][2], m.float())


@pytest.mark.parametrize("workers", [0, 1])
def test_loader_batches_cross_as_bytes_and_are_the_float_items(noisy_root, workers):
    """Runtime's loader reads an IN9Folder (or a random_split Subset of a Subset of one) as uint8 and bool, and
    gives bit for bit the batches of its float items: x / 255 and masks as float32, labels int64."""
    from torch.utils.data import Subset
    from torch.utils.data.dataloader import default_collate

    from rrx.data.byte_items import ByteItems, byte_items
    from rrx.runtime import DeviceBatches, Runtime

    data = IN9Folder(noisy_root, "original", "val", image_size=10, masks=True)
    part = Subset(Subset(data, [8, 7, 6, 5, 4, 0]), [5, 1, 3])  # data's items 0, 7, 5
    raw = byte_items(part)
    assert isinstance(raw, ByteItems) and raw.indices == [0, 7, 5] and len(raw) == 3
    assert byte_items(torch.utils.data.TensorDataset(torch.zeros(2, 3))) is None
    runtime = Runtime(torch.device("cpu"), amp=False, batch_size=2, num_workers=workers, progress=False)
    loader = runtime.loader(part, shuffle=False)
    assert isinstance(loader, DeviceBatches) and loader.dataset is part and len(loader) == 2
    assert next(iter(loader.loader))[0].dtype == torch.uint8  # what crosses the loader boundary
    batches = list(loader)
    expected = [default_collate([data[0], data[7]]), default_collate([data[5]])]
    for got, want in zip(batches, expected):
        assert [t.dtype for t in got] == [torch.float32, torch.int64, torch.float32]
        assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_preloading_leaves_the_global_random_state_alone(root):
    from rrx.data.preload import Preloaded

    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    Preloaded(IN9Folder(root, "original", "val", image_size=8), num_workers=0)
    assert torch.equal(torch.rand(3), expected)


def test_a_variation_read_with_masks_serves_it_without(in9_root, monkeypatch):
    """check_variations opens the masked sets first; a variation then asked for without masks is the masked one with
    its masks dropped (its items and its bytes), not read and preloaded a second time."""
    from types import SimpleNamespace

    import rrx.data.in9 as in9
    from rrx.challenges import check_variations
    from rrx.data.byte_items import byte_items

    dataset = _in9(in9_root, "dataset.image_size=32", "dataset.preload_gb=1")
    opened, real = [], in9.IN9Folder

    def counted(root, variation, split, *rest):
        opened.append((variation, rest[1]))  # (variation, masks)
        return real(root, variation, split, *rest)

    monkeypatch.setattr(in9, "IN9Folder", counted)
    challenge = SimpleNamespace(needs=lambda: [("mixed_rand", False), ("original", False), ("mixed_rand", True)])
    check_variations(challenge, dataset)
    assert opened == [("mixed_rand", True), ("original", False)]
    plain = dataset.variation_set("mixed_rand")
    files = real(in9_root, "mixed_rand", "val", 32)
    assert len(plain) == len(files) == 18 and plain.samples == files.samples and plain.classes == files.classes
    for index in (0, 7, 17):
        (x, y), (x_file, y_file) = plain[index], files[index]
        assert y == y_file and torch.equal(x, x_file)
        x_bytes, *rest = byte_items(plain)[index]
        assert len(rest) == 1 and torch.equal(x_bytes, files.byte_item(index)[0])


def test_a_variation_with_images_skipped_for_their_masks_is_read_again_without(tmp_path):
    """With on_bad_sample=skip, an image whose mask is missing leaves the masked set only: the set without masks is
    read from the files and keeps it."""
    root = write_in9(tmp_path, per_class=1, size=64)
    (root / "fg_mask" / "val" / "01_bird" / "n01_0.npy").unlink()
    dataset = _in9(root, "dataset.image_size=64", "dataset.on_bad_sample=skip", "dataset.val_per_class=1")
    assert len(dataset.variation_set("original", masks=True)) == 8
    assert len(dataset.variation_set("original", masks=False)) == 9
