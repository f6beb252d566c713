"""dataset=waterbirds on a fixture in group_DRO's layout: splits, labels and places from metadata.csv, CUB masks,
and the worst-group accuracy of its test split over the four (bird, place) groups."""

import json

import pandas as pd
import pytest
import torch
from fixtures.runner import one_line_error, rrx
from fixtures.waterbirds import BIRD, rows_of_split, write_waterbirds

from rrx.config import component
from rrx.data import create_dataset
from rrx.methods.groups import training_groups


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("wb")
    return write_waterbirds(base / "waterbird_complete95_forest2water2", masks=base / "segmentations")


def _dataset(root, **keys):
    return create_dataset(component("dataset", "waterbirds", root=str(root), image_size=40, **keys))


def test_splits_labels_places_and_masks_are_the_metadatas(root):
    data = _dataset(root, masks_root=str(root.parent / "segmentations"))
    assert data.classes == ["landbird", "waterbird"] and data.has_masks
    train, test = data.train_set(masks=True), data.variation_set("original", masks=True)
    assert len(train) == 16 and len(test) == 8
    assert [y for _, y, _ in test] == [y for y, _ in rows_of_split(2)]
    x, y, m = train[0]
    assert x.shape == (3, 40, 40) and m.shape == (1, 40, 40)
    # the bird's rectangle, rows 8..20 of 30 and cols 10..26 of 40, resized to 40 x 40 (nearest); the rim is not object
    expected = torch.zeros(30, 40)
    expected[BIRD] = 1
    resized = torch.nn.functional.interpolate(expected[None, None], size=(40, 40), mode="nearest")[0]
    assert torch.equal(m, resized)
    info = data.image_info("original", test)
    assert info["background_class"] == [["land", "water"][p] for _, p in rows_of_split(2)]
    assert info["image"][0].startswith("002.Laysan_Albatross/Bird_")


def test_the_training_groups_are_bird_and_place(root):
    data = _dataset(root)
    train = data.train_set(masks=False)
    expected = [["land", "water"][p] for _, p in rows_of_split(0)]
    assert data.training_background_classes(train) == expected
    part = torch.utils.data.Subset(train, [3, 0])  # a held-out part (random_split): its own items' places
    assert data.training_background_classes(part) == [expected[3], expected[0]]
    ids, names = training_groups(data, train, data.classes, "groupdro")
    assert names == [[b, p] for b in ("landbird", "waterbird") for p in ("land", "water")][: len(names)]
    assert [names[g] for g in ids] == [[data.classes[y], ["land", "water"][p]] for y, p in rows_of_split(0)]


def test_a_wrong_metadata_or_missing_masks_are_one_line(root, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "metadata.csv").write_text("img_filename,y,split\na.jpg,0,0\n")
    with pytest.raises(Exception, match="no column place"):
        _dataset(bad)
    with pytest.raises(Exception, match="has no object masks"):
        _dataset(root).train_set(masks=True)


def test_training_on_waterbirds_reports_the_worst_group(root, tmp_path):
    run = tmp_path / "run"
    rrx(
        "train",
        "dataset=waterbirds",
        f"dataset.root={root}",
        "dataset.image_size=40",
        "model=small_cnn",
        "model.width=8",
        "challenge=original",
        "trainer.epochs=1",
        "trainer.batch_size=8",
        "trainer.progress=false",
        f"hydra.run.dir={run}",
    )
    groups = json.loads((run / "metrics.json").read_text())["challenges"]["groups"]["original"]
    frame = pd.read_parquet(run / "predictions.parquet")
    by_group = frame.groupby(["label_name", "background_class"]).apply(
        lambda g: (g["label"] == g["prediction"]).mean(), include_groups=False
    )
    assert groups["groups"] == 4 and groups["smallest_group"] == 2
    assert groups["worst_group_accuracy"] == by_group.min()
    assert (tmp_path / "run" / "groups.csv").is_file()
    failed = rrx(
        "train",
        "dataset=waterbirds",
        "method=rrda",
        f"dataset.root={root}",
        f"hydra.run.dir={tmp_path / 'rrda'}",
        check=False,
    )
    line = one_line_error(failed)
    assert "has no object masks" in line and "dataset.masks_root" in line
