"""Mask sources (config group ``mask``, rrx.masks): which training images keep their masks, what an image without
one does in the loss and in RRDA, and that keeping every mask is the labelled run exactly."""

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from test_lifecycle import SEGMENTATION, _compose, assert_same_numbers

import rrx
from rrx.api import _runtime
from rrx.config import component
from rrx.errors import RRXError
from rrx.masks import KeptMasks, has_context, iou, made_mask_quality
from rrx.masks.attribution import otsu_masks, otsu_threshold, top_share_masks
from rrx.masks.curve import _has_curve, mask_curve_figure, mask_curve_table
from rrx.masks.fraction import kept_per_class
from rrx.models import create_model
from rrx.models.small_cnn import SmallCNN
from rrx.record import Record
from rrx.tables import write_table
from rrx.tasks.classification import training_step
from rrx.train import train


def test_the_kept_share_of_each_class_is_p_rounded_half_up():
    labels = [0] * 10 + [1] * 3 + [2] * 1 + [3] * 6
    for p, counts in [(0.25, [3, 1, 0, 2]), (0.5, [5, 2, 1, 3]), (0.0, [0, 0, 0, 0]), (1.0, [10, 3, 1, 6])]:
        kept = kept_per_class(labels, p, torch.Generator().manual_seed(0))
        assert [sum(labels[i] == c for i in kept) for c in range(4)] == counts  # 2.5 -> 3, 0.75 -> 1, 0.25 -> 0
        assert kept == sorted(set(kept))
    small = kept_per_class(labels, 0.25, torch.Generator().manual_seed(3))
    large = kept_per_class(labels, 0.5, torch.Generator().manual_seed(3))
    assert set(small) < set(large)  # one seed: the curve's points are nested
    assert small != kept_per_class(labels, 0.25, torch.Generator().manual_seed(4))


def test_an_image_without_a_mask_carries_ones():
    x, mask = torch.rand(3, 3, 4, 4), (torch.rand(3, 1, 4, 4) > 0.5).float()
    data = KeptMasks(torch.utils.data.TensorDataset(x, torch.arange(3), mask), kept=[1])
    assert torch.equal(data[1][2], mask[1]) and torch.equal(data[0][2], torch.ones(1, 4, 4))
    assert torch.equal(data[2][0], x[2]) and data[2][1] == 2
    made = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    made[0, :, :2] = 1  # a source's mask of image 0: its top half
    sourced = KeptMasks(torch.utils.data.TensorDataset(x, torch.arange(3), mask), kept=[1], made=made)
    assert torch.equal(sourced[0][2], made[0].float()) and torch.equal(sourced[1][2], mask[1])
    assert has_context(torch.stack([data[i][2] for i in range(3)])).tolist() == [False, mask[1].min() < 1, False]


@pytest.mark.parametrize("name", ["rrr", "gradmask", "actdiff", "cdep", "eg"])
def test_every_mask_penalty_is_zero_on_an_image_without_a_mask(name):
    """The all-ones mask leaves no context: (1 - M) * gradient, f(x) - f(M * x) and the context's share are 0."""
    torch.manual_seed(0)
    model = create_model(component("model", "small_cnn", width=4), 3, [0.5] * 3, [0.25] * 3).eval()
    x, y = torch.rand(2, 3, 16, 16), torch.tensor([0, 2])
    _, logs = rrx.method(name).loss(model, x, y, torch.ones(2, 1, 16, 16))
    assert float(logs["penalty"]) == pytest.approx(0.0, abs=1e-7)


def test_rrda_pairs_only_the_images_with_masks():
    model = SmallCNN(num_classes=3, width=4)
    x, y = torch.rand(5, 3, 16, 16), torch.tensor([0, 1, 2, 0, 1])
    mask = torch.ones(5, 1, 16, 16)
    mask[[1, 3], :, 4:12, 4:12] = 0  # images 1 and 3 have some context (made-up masks); 0, 2, 4 none
    method, runtime = rrx.method("rrda"), _runtime("cpu", 5, False)
    _, labels, _ = training_step(model, method, rrx.attack("none"), None, (x, y, mask), runtime, torch.Generator())
    assert labels.tolist() == [0, 1, 2, 0, 1, 1, 0]  # the batch, then objects 1 and 3 on each other's context
    _, labels, _ = training_step(
        model, method, rrx.attack("none"), None, (x, y, torch.ones_like(mask)), runtime, torch.Generator()
    )
    assert labels.tolist() == y.tolist()  # p = 0: nothing to pair


def test_every_mask_kept_is_the_labelled_run_exactly(compose_train, tmp_path):
    labelled = train(compose_train("method=rrda"), tmp_path / "labelled")
    fraction = train(compose_train("method=rrda", "mask=fraction", "mask.p=1"), tmp_path / "all")
    assert_same_numbers(fraction["challenges"], labelled["challenges"])
    numbers = [{k: e[k] for k in ("loss", "acc")} for e in labelled["train"]["epochs"]]
    assert_same_numbers([{k: e[k] for k in ("loss", "acc")} for e in fraction["train"]["epochs"]], numbers)
    assert fraction["train"]["masks"]["with_mask"] == fraction["train"]["masks"]["images"] == 72
    assert (
        fraction["run"]["method"] == "Standard + RRDA (100% masks)" and labelled["run"]["method"] == "Standard + RRDA"
    )
    assert labelled["train"]["masks"] == {"source": "labelled", "images": 72, "with_mask": 72}


def test_a_quarter_of_the_masks_is_recorded_per_class(compose_train, tmp_path):
    metrics = train(compose_train("method=rrr", "mask=fraction", "mask.p=0.25"), tmp_path)
    masks = metrics["train"]["masks"]
    assert masks["with_mask"] == 9 * 2 and set(map(tuple, masks["per_class"].values())) == {(2, 8)}
    assert metrics["run"]["method"] == "RRR (25% masks)"


def test_a_mask_source_for_a_method_without_masks_is_one_error(compose_train, tmp_path):
    with pytest.raises(RRXError, match="mask=fraction changes nothing: method=standard uses no masks; drop mask="):
        train(compose_train("mask=fraction"), tmp_path)
    with pytest.raises(RRXError, match=r"mask.p=2: must be in \[0, 1\]"):
        train(compose_train("method=rrda", "mask=fraction", "mask.p=2"), tmp_path / "p2")
    assert OmegaConf.select(compose_train(), "mask.name") == "labelled"


def test_the_mask_curve_averages_the_seeds_of_each_p(tmp_path):
    def run(p, seed, original, rand):
        challenges = {
            "accuracy": {"original": original, "mixed_same": 0.9, "mixed_rand": rand, "only_fg": 0.5},
            "bg_gap": 0.9 - rand,
            "groups": {"mixed_rand": {"worst_group_accuracy": rand / 2}},
        }
        info = {"architecture": "SmallCNN", "method": f"Standard + RRDA ({100 * p:g}% masks)", "seed": seed}
        masks = {"source": "fraction", "p": p, "images": 90, "with_mask": round(90 * p)}
        return Record("train", info, challenges=challenges, train={"masks": masks})

    runs = [run(0.05, 0, 0.8, 0.4), run(0.05, 1, 0.9, 0.6), run(1.0, 0, 1.0, 0.9)]
    assert all(_has_curve(m) for m in runs)
    write_table(mask_curve_table(runs), tmp_path / "curve")
    table = pd.read_csv(tmp_path / "curve.csv")
    assert table["p (%)"].tolist() == [5, 100] and table["Method"].tolist() == ["Standard + RRDA"] * 2
    assert table["Original"].tolist() == [85.0, 100.0] and table["Worst group mixed rand"].tolist() == [25.0, 45.0]
    assert table["BG Gap"].tolist() == [40.0, 0.0] and table["Seeds"].tolist() == [2, 1]
    assert table["Images with a mask"].tolist() == [4.0, 90.0] and table["Other masks"].tolist() == ["none"] * 2
    assert mask_curve_figure(runs, "synthetic", tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_the_curve_names_a_segmenters_masks_and_leaves_an_unmeasured_iou_empty():
    info = {"architecture": "SmallCNN", "method": "Standard + RRDA (U-Net masks, 100% labelled)", "seed": 0}
    masks = {"source": "segmenter", "p": 1.0, "images": 9, "with_mask": 9, "iou": {"mean": None, "per_class": {}}}
    challenges = {"accuracy": {"original": 1.0, "mixed_rand": 0.5}, "bg_gap": 0.5}
    (row,) = mask_curve_table([Record("train", info, challenges=challenges, train={"masks": masks})]).to_dict("records")
    assert row["Other masks"] == "U-Net segmenter" and row["Method"] == "Standard + RRDA" and row["p (%)"] == "100"
    assert np.isnan(row["IoU of the other masks"]) and row["BG Gap"] == 50.0


def test_the_mask_quality_table_has_a_row_per_run_that_made_masks():
    from rrx.masks.curve import _made_masks, mask_quality_table

    made = {"source": "segmenter", "p": 0.05, "images": 20, "with_mask": 2, "object_share": 0.25}
    made["iou"] = {"mean": 0.6, "per_class": {"a": 0.5, "b": 0.7}}
    runs = [Record("train", {}, train={"masks": made}), Record("train", {}, train={"masks": {"source": "fraction"}})]
    assert [_made_masks(m) for m in runs] == [True, False]
    (row,) = mask_quality_table(runs[:1]).to_dict("records")
    assert row == {
        "Other masks": "U-Net segmenter",
        "p (%)": "5",
        "Images with made masks": 18.0,
        "Object share": 25.0,
        "IoU": 60.0,
        "IoU a": 50.0,
        "IoU b": 70.0,
    }


def test_the_top_share_of_a_hand_made_map():
    maps = torch.tensor([[[5.0, 1.0, 3.0], [3.0, 0.0, 9.0]]])
    # k = round(0.5 * 6) = 3: 9, 5 and the first of the two 3s in position order
    assert top_share_masks(maps, 0.5).tolist() == [[[[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]]]
    assert top_share_masks(maps, 0.01).sum() == 1  # at least one pixel


def test_otsus_threshold_by_hand():
    """Values 0 (x4), 0.5 (x2), 1 (x2). Split below 0.5: w0 = w1 = 1/2, mu0 = 0, mu1 = 0.75 -> 1/4 * 0.5625 = 0.1406;
    split below 1: w0 = 3/4, w1 = 1/4, mu0 = 1/6, mu1 = 1 -> 3/16 * 25/36 = 0.1302. The first wins."""
    values = np.array([0.0] * 4 + [0.5] * 2 + [1.0] * 2)
    t = otsu_threshold(values)
    assert ((values > t) == (values >= 0.5)).all()
    assert otsu_masks(torch.tensor(values).view(1, 2, 4)).sum() == 4
    assert otsu_threshold(np.full(5, 0.3)) == 0.3 and not (np.full(5, 0.3) > 0.3).any()  # constant: no object


def test_iou_by_hand():
    a = torch.tensor([[1.0, 1.0, 0.0, 0.0]]).view(1, 1, 2, 2)
    b = torch.tensor([[1.0, 0.0, 1.0, 0.0]]).view(1, 1, 2, 2)
    assert iou(a, b).tolist() == [pytest.approx(1 / 3)] and iou(torch.zeros_like(a), torch.zeros_like(a)).tolist() == [
        1
    ]


def test_masks_from_a_classifiers_attributions(compose_train, tmp_path):
    train(compose_train(), tmp_path / "standard")
    metrics = train(
        compose_train("method=rrda", "mask=attribution", f"mask.checkpoint={tmp_path / 'standard'}"), tmp_path / "a"
    )
    masks = metrics["train"]["masks"]
    assert masks["source"] == "attribution" and masks["with_mask"] == 0 and masks["rule"] == "top_share"
    assert masks["object_share"] == pytest.approx(round(0.25 * 32 * 32) / (32 * 32))  # k pixels of every image
    assert 0 <= masks["iou"]["mean"] <= 1 and len(masks["iou"]["per_class"]) == 9
    assert metrics["run"]["method"] == "Standard + RRDA (gradcam masks)"
    assert (tmp_path / "a" / "made_masks.pt").is_file()  # kept with the run


def test_the_quality_of_made_masks_is_taken_on_the_images_that_use_them():
    made = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 1]], dtype=torch.uint8).view(3, 1, 2, 2)
    labelled = torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1]], dtype=torch.uint8).view(3, 1, 2, 2)
    found = made_mask_quality(made, labelled, [0, 0, 1], kept=[1], classes=["a", "b"])
    # image 1 keeps its labelled mask; image 0: 1/2, image 2: 1/2; object share (2 + 1) / 8
    assert found == {"object_share": 3 / 8, "iou": {"mean": 0.5, "per_class": {"a": 0.5, "b": 0.5}}}
    assert made_mask_quality(made, labelled, [0, 0, 1], kept=[0, 1, 2], classes=["a", "b"]) == {
        "object_share": None,
        "iou": {"mean": None, "per_class": {}},
    }


def test_made_masks_are_kept_with_the_run_and_read_back_for_its_key(tmp_path):
    from rrx.masks import cached_masks

    made = (torch.rand(3, 1, 5, 7) > 0.5).to(torch.uint8)  # 105 pixels: not a whole number of bytes
    labelled = (torch.rand(3, 1, 5, 7) > 0.5).to(torch.uint8)
    key, cache, calls = {"source": "attribution", "sha256": "ab", "images": 3}, tmp_path / "made_masks.pt", []

    def make():
        calls.append(1)
        return made, labelled

    for _ in range(2):
        found = cached_masks(cache, key, make)
        assert torch.equal(found[0], made) and torch.equal(found[1], labelled)
    saved = torch.load(cache, weights_only=True)
    assert len(calls) == 1 and saved["made"]["bits"].numel() == 14  # 8 pixels a byte: ceil(105 / 8)
    cached_masks(cache, {**key, "sha256": "cd"}, make)  # another checkpoint: made again
    assert len(calls) == 2
    cached_masks(None, key, make)
    assert len(calls) == 3


def _segmenter(cache_dir, tmp_path, *more):
    """A 1-epoch U-Net of the lifecycle tests' tiny segmentation config (3 classes of 4 training images) trained on
    the labelled share of ``more``."""
    cfg = _compose(cache_dir, *SEGMENTATION, "method=standard", "trainer.epochs=1", *more)
    return train(cfg, tmp_path / "segmenter"), tmp_path / "segmenter"


def test_a_segmenter_trains_on_the_labelled_share_only(cache_dir, tmp_path):
    metrics, _ = _segmenter(cache_dir, tmp_path, "mask=fraction", "mask.p=0.5")
    masks = metrics["train"]["masks"]
    assert metrics["train"]["images"] == masks["with_mask"] == 3 * 2  # floor(0.5 * 4 + 1/2) of each class
    assert list(masks["per_class"].values()) == [[2, 4]] * 3 and masks["seed"] == 0
    for bad, message in [
        (["mask=fraction", "mask.p=0.1"], r"mask.p=0.1 keeps no training image of the 12"),
        (["mask=attribution", "mask.checkpoint=x"], r"mask=attribution makes masks for a classifier to train on"),
    ]:
        with pytest.raises(RRXError, match=message):
            _segmenter(cache_dir, tmp_path / "bad", *bad)


def test_masks_from_a_segmenter_of_the_labelled_share(cache_dir, tmp_path):
    """The items the segmenter trained on keep their labelled masks; every other gets model(x) > threshold of the
    U-Net rebuilt here from its state dict; the IoU is of those others; a subset (trainer.val_fraction) maps to
    the base training set's images."""
    from torch.utils.data import Subset

    from rrx.data import create_dataset
    from rrx.masks import create_mask_source
    from rrx.models.unet import create_unet

    _, folder = _segmenter(cache_dir, tmp_path, "mask=fraction", "mask.p=0.5", "seed=3")
    dataset = create_dataset(_compose(cache_dir, *SEGMENTATION).dataset)
    base = dataset.train_set(masks=True)
    labels = [int(base[i][1]) for i in range(len(base))]
    seen = set(kept_per_class(labels, 0.5, torch.Generator().manual_seed(3)))
    order = [11, 0, 5, 7, 2, 9, 4]  # a run's training part: base images in another order
    source = create_mask_source({"name": "segmenter", "checkpoint": str(folder)})
    assert source.label == "U-Net masks, 50% labelled"
    data, report = source.apply(Subset(base, order), list(dataset.classes), 0, dataset, _runtime("cpu", 4, False))
    ckpt = torch.load(folder / "checkpoint.pt", weights_only=True)
    unet = create_unet(component("model", "unet", width=4), 3, dataset.mean, dataset.std, 32).eval()
    unet.load_state_dict(ckpt["state_dict"])
    scores = []
    for i, b in enumerate(order):
        x, y, mask = base[b]
        assert data[i][1] == y and torch.equal(data[i][0], x)
        if b in seen:
            assert torch.equal(data[i][2], mask)
            continue
        with torch.no_grad():
            made = (unet(x[None]) > 0.5).float()[0]
        assert torch.equal(data[i][2], made)
        both, either = (made.bool() & (mask > 0.5)).sum(), (made.bool() | (mask > 0.5)).sum()
        scores.append(float(both / either) if either else 1.0)
    assert report["with_mask"] == sum(b in seen for b in order) and report["images"] == len(order)
    assert report["iou"]["mean"] == pytest.approx(np.mean(scores)) and report["threshold"] == 0.5


def test_a_segmenter_source_refuses_what_it_cannot_use(cache_dir, compose_train, tmp_path):
    from rrx.masks import create_mask_source

    _, every = _segmenter(cache_dir, tmp_path / "all")
    train(compose_train(), tmp_path / "classifier")
    for folder, message in [
        (every, r"trained on every training image's labelled mask.*mask=fraction mask.p=<share>"),
        (tmp_path / "classifier", r"is a classifier; mask=segmenter reads a segmenter: rrx train task=segmentation"),
    ]:
        with pytest.raises(RRXError, match=message):
            create_mask_source({"name": "segmenter", "checkpoint": str(folder)})
    _, share = _segmenter(cache_dir, tmp_path / "share", "mask=fraction", "mask.p=0.5")
    with pytest.raises(RRXError, match=r"trained on another training set \(12 images\) than this run's \(72\)"):
        train(compose_train("method=rrda", "mask=segmenter", f"mask.checkpoint={share}"), tmp_path / "x")
