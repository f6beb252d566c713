"""ObEy's object masks (seed 002, Eq. 2): the synthetic benchmark's segments, a folder of precomputed masks, the
runner's names with and without them, and its errors."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from fixtures.runner import one_line_error, rrx
from omegaconf import OmegaConf
from PIL import Image

from rrx.analyses import create_analysis
from rrx.analyses.common import analysis_images
from rrx.analyses.localisation import obey, table_obey, weighted_iou
from rrx.data import create_dataset
from rrx.data.in9 import IN9Folder
from rrx.data.synthetic import SceneSegments, SyntheticConfig, SyntheticSpec, class_folder, materialise
from rrx.data.variations import VARIATIONS
from rrx.errors import RRXError
from rrx.record import Record
from rrx.runtime import Runtime

CPU = Runtime(torch.device("cpu"), amp=False, batch_size=4, num_workers=0, progress=False)
SPEC = SyntheticSpec(num_classes=3, image_size=48, train_per_class=2, val_per_class=3, bg_correlation=0.5, seed=5)
# sha1 of every file of SPEC's benchmark (paths and bytes), recorded with the generator before SceneSegments existed:
# replaying the draws for the segments left the images, labels and masks as they were
SPEC_DIGEST = "50aa4ea751a45caff256cedba6818b0106e6ee78"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return materialise(SPEC, tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def scenes():
    return SceneSegments(SPEC)


def _load(path):
    return np.asarray(Image.open(path), dtype=np.float32) / 255


def _val_images(root, variation):
    return sorted((root / variation / "val").glob("*/*.JPEG"))


def test_the_benchmark_is_unchanged(root):
    digest = hashlib.sha1()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    assert digest.hexdigest() == SPEC_DIGEST


def test_the_object_comes_first_and_is_the_generators_mask(root, scenes):
    for image in _val_images(root, "original") + _val_images(root, "mixed_rand"):
        stem = image.stem[3:].split("_bg_")[0] if image.stem.startswith("fg_") else image.stem
        written = np.load(root / "fg_mask" / "val" / image.parent.name / f"{stem}.npy").astype(bool)
        variation = image.parents[2].name
        assert np.array_equal(scenes.masks(variation, image.name)[0], written)


@pytest.mark.parametrize("variation", VARIATIONS)
def test_segments_partition_what_the_image_shows(root, scenes, variation):
    """Every pixel lies in exactly one segment (the object occludes the stripes under it), none is empty."""
    for image in _val_images(root, variation):
        masks = scenes.masks(variation, image.name)
        assert masks.shape[1:] == (SPEC.image_size,) * 2 and masks.any((1, 2)).all()
        assert (masks.sum(0) == 1).all(), image.name


def test_stripes_are_the_light_and_dark_bands_of_the_background(root, scenes):
    """Independent of the generator's formula: on each only_bg_t image (the clean background), a pixel is light when
    its brightness is above the image's mean; each stripe's interior (pixels whose 4-neighbours are in the same stripe)
    is all light or all dark, up to noise, and stripes that touch alternate."""
    for image in _val_images(root, "only_bg_t"):
        stripes = scenes.masks("only_bg_t", image.name)  # (M, H, W)
        brightness = _load(image).mean(2)
        light = brightness > brightness.mean()
        shares, order = [], []
        for stripe in stripes:
            inner = stripe.copy()
            inner[1:] &= stripe[:-1]
            inner[:-1] &= stripe[1:]
            inner[:, 1:] &= stripe[:, :-1]
            inner[:, :-1] &= stripe[:, 1:]
            if inner.sum() >= 8:
                share = light[inner].mean()
                assert share > 0.9 or share < 0.1, (image.name, share)
                shares.append(share > 0.5)
                order.append(stripe)
        for a, b, sa, sb in zip(order, order[1:], shares, shares[1:]):
            touching = (
                (a[1:] & b[:-1]).any()
                or (a[:-1] & b[1:]).any()
                or (a[:, 1:] & b[:, :-1]).any()
                or (a[:, :-1] & b[:, 1:]).any()
            )
            if touching:
                assert sa != sb, image.name


def test_a_mixed_image_shows_its_partners_stripes_less_its_object(root, scenes):
    for image in _val_images(root, "mixed_next"):
        fg, bg = image.stem[3:].split("_bg_")
        masks = scenes.masks("mixed_next", image.name)
        obj, stripes = masks[0], masks[1:]
        background = scenes.masks("only_bg_t", f"{bg}.JPEG")
        expected = [s & ~obj for s in background if (s & ~obj).any()]
        assert len(stripes) == len(expected) and all(np.array_equal(a, b) for a, b in zip(stripes, expected))
        assert not (stripes & obj).any()
        # the pixels under the object mask have the object's colour: they differ from the partner's background there
        inner = obj.copy()
        inner[1:] &= obj[:-1]
        inner[:-1] &= obj[1:]
        only_bg = _load(root / "only_bg_t" / "val" / class_folder(int(bg[3:5])) / f"{bg}.JPEG")
        assert np.abs(_load(image)[inner] - only_bg[inner]).mean() > 0.1


def test_obey_over_the_segments_is_at_least_the_wiou_with_the_object(root, scenes):
    images = _val_images(root, "original")
    sets = [torch.from_numpy(scenes.masks("original", p.name)) for p in images]
    most = max(len(s) for s in sets)
    masks = torch.zeros(len(sets), most, SPEC.image_size, SPEC.image_size)
    valid = torch.zeros(len(sets), most, dtype=torch.bool)
    for i, s in enumerate(sets):
        masks[i, : len(s)], valid[i, : len(s)] = s.float(), True
    maps = torch.rand(len(sets), SPEC.image_size, SPEC.image_size, generator=torch.Generator().manual_seed(0))
    labelled = weighted_iou(maps, masks[:, 0])
    best = obey(maps, masks, valid)
    assert (best >= labelled - 1e-6).all() and (best > labelled).any()
    stripe = masks[0, 1]  # a map that is one stripe exactly: ObEy 1, while the object alone misses it
    assert obey(stripe[None], masks[:1], valid[:1]).item() == pytest.approx(1.0)
    assert weighted_iou(stripe[None], masks[:1, 0]).item() == 0.0


def test_unknown_images_and_splits_are_named(scenes):
    with pytest.raises(RRXError, match="no image syn09_99999"):
        scenes.masks("original", "syn09_99999.JPEG")
    with pytest.raises(RRXError, match="known: train, val"):
        SceneSegments(SPEC, split="test")


class ChannelReader(torch.nn.Module):
    """Logit k = sum of channel ``channels[k]``: Input x Gradient of the class is that channel's values."""

    def __init__(self, channels):
        super().__init__()
        self.channels = channels

    def forward(self, x):
        return torch.stack([x[:, c].sum((1, 2)) for c in self.channels], 1)


def analysis(**settings):
    return create_analysis({"name": "obey", "attribution": ["input_x_gradient"], **settings})


def _tiny_in9(tmp_path):
    """Two 8 x 8 PNG images in the IN-9 layout: a red object on the top rows of a black image (4 rows in a, 2 in b),
    with its fg_mask."""
    root = tmp_path / "bg_challenge"
    for stem, rows in (("a", 4), ("b", 2)):
        img = np.zeros((8, 8, 3), np.uint8)
        img[:rows, :, 0] = 255
        mask = np.zeros((8, 8), np.uint8)
        mask[:rows] = 1
        for variation in ("original", "fg_mask"):
            (root / variation / "val" / "00_red").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / "original" / "val" / "00_red" / f"{stem}.png")
        np.save(root / "fg_mask" / "val" / "00_red" / f"{stem}.npy", mask)
    return root


def _rows(top, bottom):
    m = np.zeros((8, 8), bool)
    m[top:bottom] = True
    return m


def test_a_folder_of_object_masks_round_trips(tmp_path):
    """Image a's masks as one .npz (half its object, the rest of the image), image b's as segment-anything's PNG folder
    (its object, a stripe below). The red reader's map is the object: ObEy = max(wIoU) = 1/2 for a (half the object:
    |half| / |object|; the rest: 0), 1 for b; the wIoU with the labelled object is 1 for both."""
    root = _tiny_in9(tmp_path)
    masks = tmp_path / "sam"
    (masks / "original" / "00_red").mkdir(parents=True)
    np.savez_compressed(masks / "original" / "00_red" / "a.npz", masks=np.stack([_rows(0, 2), _rows(4, 8)]))
    folder = masks / "original" / "00_red" / "b"
    folder.mkdir()
    for k, m in enumerate([_rows(0, 2), _rows(2, 3)]):
        Image.fromarray(m.astype(np.uint8) * 255).save(folder / f"{k}.png")
    (folder / "metadata.csv").write_text("id,area\n")
    dataset = SimpleNamespace(name="in9", root=root)
    with_folder = analysis(object_masks=str(masks))
    assert with_folder.needs_masks is False  # the dataset's own masks are not read
    data = IN9Folder(root, "original", "val", 8)
    result = with_folder.run(ChannelReader([0, 1]), data, dataset, CPU, tmp_path)["input_x_gradient"]
    assert set(result) == {"obey", "obey_iou"}
    assert result["obey"]["all"]["mean"] == pytest.approx((0.5 + 1.0) / 2) and result["obey"]["all"]["n"] == 2
    assert result["obey_iou"]["all"]["mean"] == pytest.approx((0.5 + 1.0) / 2)
    labelled = analysis()
    assert labelled.needs_masks is True
    plain = labelled.run(
        ChannelReader([0, 1]), IN9Folder(root, "original", "val", 8, masks=True), dataset, CPU, tmp_path
    )
    assert set(plain["input_x_gradient"]) == {"wiou", "iou"}
    assert plain["input_x_gradient"]["wiou"]["all"]["mean"] == pytest.approx(1.0)


def test_object_mask_errors_name_the_value_and_what_was_expected(tmp_path):
    with pytest.raises(RRXError, match=r"analysis.object_masks=.*nope: no such folder; give one of null .*synthetic"):
        analysis(object_masks=str(tmp_path / "nope"))
    root = _tiny_in9(tmp_path)
    masks = tmp_path / "sam"
    (masks / "original" / "00_red").mkdir(parents=True)
    np.savez_compressed(masks / "original" / "00_red" / "a.npz", masks=np.ones((1, 4, 4), bool))
    dataset, data = SimpleNamespace(name="in9", root=root), IN9Folder(root, "original", "val", 8)
    obey_folder = analysis(object_masks=str(masks))
    with pytest.raises(RRXError, match=r"no object masks for image .*b\.png: expected .*00_red/b\.npz"):
        obey_folder.run(ChannelReader([0, 1]), data, dataset, CPU, tmp_path)
    np.savez_compressed(masks / "original" / "00_red" / "b.npz", masks=np.ones((1, 8, 8), bool))
    with pytest.raises(RRXError, match=r"a\.npz holds masks of size \(4, 4\), its image .*a\.png has size \(8, 8\)"):
        obey_folder.run(ChannelReader([0, 1]), data, dataset, CPU, tmp_path)
    np.savez_compressed(masks / "original" / "00_red" / "a.npz", segmentation=np.ones((1, 8, 8), bool))
    with pytest.raises(RRXError, match=r"holds \['segmentation'\], expected an array named masks"):
        obey_folder.run(ChannelReader([0, 1]), data, dataset, CPU, tmp_path)
    with pytest.raises(RRXError, match="object_masks=synthetic needs the generated synthetic benchmark"):
        analysis(object_masks="synthetic").run(ChannelReader([0, 1]), data, dataset, CPU, tmp_path)


def test_synthetic_object_masks_on_the_benchmark(root, tmp_path):
    cfg = OmegaConf.merge(
        OmegaConf.structured(SyntheticConfig),
        {
            "cache_dir": str(root.parents[1]),
            "num_classes": SPEC.num_classes,
            "image_size": SPEC.image_size,
            "train_per_class": SPEC.train_per_class,
            "val_per_class": SPEC.val_per_class,
            "bg_correlation": SPEC.bg_correlation,
            "generator_seed": SPEC.seed,
            "preload_gb": 0,
        },
    )
    dataset = create_dataset(cfg)
    assert dataset.root == root
    model = ChannelReader([0, 1, 2])
    synthetic = analysis(object_masks="synthetic", variation="mixed_rand")
    data = analysis_images(dataset, "mixed_rand", synthetic.needs_masks, None)
    result = synthetic.run(model, data, dataset, CPU, tmp_path)["input_x_gradient"]
    labelled = analysis(variation="mixed_rand")
    plain = labelled.run(model, analysis_images(dataset, "mixed_rand", True, None), dataset, CPU, tmp_path)[
        "input_x_gradient"
    ]
    assert result["obey"]["all"]["n"] == plain["wiou"]["all"]["n"] == 9
    assert result["obey"]["all"]["mean"] > plain["wiou"]["all"]["mean"]  # the object is one of the segments


def _obey_metrics(kind: str, method: str) -> Record:
    stats = {"mean": 0.5, "std": 0.1, "n": 3, "undefined": 0}
    names = ("obey", "obey_iou") if kind == "obey" else ("wiou", "iou")
    result = {name: {"all": stats, "correct": stats, "wrong": stats | {"n": 0}} for name in names}
    return Record(
        command="analyze",
        run={"architecture": "SmallCNN", "method": method},
        analyses={
            "obey": {
                f"saliency [object_masks={kind}]": result | {"key": "saliency", "settings": {"object_masks": kind}}
            }
        },
    )


def test_the_report_calls_it_obey_only_with_object_masks():
    labelled = table_obey([_obey_metrics("null", "Standard")])
    assert not any("ObEy" in c for c in labelled.columns)
    assert list(labelled.columns) == [
        "Architecture",
        "Method",
        "Attribution",
        "wIoU (labelled object)",
        "IoU (labelled object)",
        "wIoU (labelled object) correct",
        "wIoU (labelled object) wrong",
        "Correct",
        "Wrong",
    ]
    both = table_obey([_obey_metrics("obey", "Standard"), _obey_metrics("null", "RRDA")])
    assert {"ObEy", "ObEy IoU", "ObEy correct", "ObEy wrong", "wIoU (labelled object)"} <= set(both.columns)
    assert list(both.columns[-2:]) == ["Correct", "Wrong"] and list(both["Settings"]) == [
        "object_masks=obey",
        "object_masks=null",
    ]
    assert both["ObEy"].isna().tolist() == [False, True] and both["wIoU (labelled object)"].isna().tolist() == [
        True,
        False,
    ]


def test_cli_a_missing_object_mask_folder_is_one_line(tmp_path):
    result = rrx(
        "analyze",
        "analysis=obey",
        f"analysis.object_masks={tmp_path / 'nope'}",
        f"hydra.run.dir={tmp_path / 'a'}",
        check=False,
    )
    one_line_error(result, f"analysis.object_masks={tmp_path / 'nope'}", "null", "synthetic", "<variation>/<class>")
