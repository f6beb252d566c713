"""predictions.parquet: one row per evaluated image, from which every accuracy of the run is recomputed, with the
class of each mixed image's background; a file that disagrees with its metrics.json is refused by rrx report."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY
from fixtures.in9 import write_in9
from hydra import compose, initialize_config_module

from rrx.challenges.groups import group_accuracy
from rrx.config import component
from rrx.data import create_dataset
from rrx.data.in9 import IN9Config, in9
from rrx.predictions import COLUMNS, disagreement
from rrx.report.collect import find_metrics
from rrx.report.report import report
from rrx.train import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache_dir):
    """A tiny training run on the synthetic benchmark (in the IN-9 layout under ``cache_dir``)."""
    out = tmp_path_factory.mktemp("run")
    with initialize_config_module("rrx.conf", version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, f"dataset.cache_dir={cache_dir}"])
    train(cfg, out)
    return out


def test_the_predictions_give_the_recorded_accuracies_and_bg_gap(trained):
    frame = pd.read_parquet(trained / "predictions.parquet")
    metrics = json.loads((trained / "metrics.json").read_text())
    assert list(frame.columns) == COLUMNS
    recorded = metrics["challenges"]["accuracy"]
    assert sorted(frame["variation"].unique()) == sorted(recorded)
    for variation, acc in recorded.items():
        rows = frame[frame["variation"] == variation]
        assert (rows["label"] == rows["prediction"]).sum() / len(rows) == pytest.approx(acc, abs=1e-12)
    same, rand = (frame[frame["variation"] == v] for v in ("mixed_same", "mixed_rand"))
    gap = (same["label"] == same["prediction"]).mean() - (rand["label"] == rand["prediction"]).mean()
    assert gap == pytest.approx(metrics["challenges"]["bg_gap"], abs=1e-12)
    assert frame["confidence"].between(1 / 9, 1).all()  # the arg-max's softmax probability of 9 classes


def test_the_edge_grid_and_the_accuracies_under_attack_are_recomputed_from_the_predictions(tmp_path, cache_dir):
    with initialize_config_module("rrx.conf", version_base="1.3"):
        overrides = ["challenge=all", "challenge.widths=[5,20]", "challenge.snr_max_images=2", "attack=fgsm"]
        cfg = compose("train", overrides=[*TINY, f"dataset.cache_dir={cache_dir}", *overrides, "attack.eval_eps=[0.1]"])
    train(cfg, tmp_path)
    frame = pd.read_parquet(tmp_path / "predictions.parquet")
    challenges = json.loads((tmp_path / "metrics.json").read_text())["challenges"]
    shares = frame.groupby(["challenge", "condition", "variation"])["correct"].mean()
    images = frame.groupby(["challenge", "condition", "variation"]).size()
    for variation, accs in challenges["edge"].items():
        for width, acc in accs.items():
            assert shares["edge", f"W={width}", variation] == pytest.approx(acc, abs=1e-12)
            assert images["edge", f"W={width}", variation] == images["background", "", variation]
    assert shares["attack", "attack", "original"] == pytest.approx(challenges["adversarial_accuracy"]["original"])
    assert shares["attack", "attack eps=0.1", "original"] == pytest.approx(challenges["adversarial_curve"]["0.1"])
    for variation, acc in challenges["accuracy"].items():  # the background set's, unperturbed
        assert shares["background", "", variation] == pytest.approx(acc, abs=1e-12)
    edited = frame.copy()
    first = edited.index[edited["condition"] == "W=20"][0]
    edited.loc[first, "correct"] = not edited.loc[first, "correct"]
    assert disagreement(challenges, frame) is None
    assert disagreement(challenges, edited).startswith(f"edge/{edited.loc[first, 'variation']}/20: ")


def test_a_mixed_images_background_class_is_that_of_the_image_it_came_from(trained, cache_dir):
    frame = pd.read_parquet(trained / "predictions.parquet")
    root = create_dataset(  # the run's benchmark (its bg_challenge folder), by the tiny config's settings
        component("dataset", "synthetic", cache_dir=str(cache_dir), image_size=32, train_per_class=8, val_per_class=4)
    ).root
    owner = {p.stem: p.parent.name for p in (root / "original" / "val").glob("*/*")}
    mixed = frame[frame["variation"].str.startswith("mixed")]
    assert len(mixed) and frame[frame["variation"] == "original"]["background_class"].isna().all()
    for image, background in mixed[["image", "background_class"]].itertuples(index=False):
        assert (root / image).is_file()
        assert background == owner[Path(image).stem.split("_bg_")[1]]  # fg_<stem>_bg_<stem2>: stem2's class
    same = frame[frame["variation"] == "mixed_same"]  # a background of the object's own class
    assert (same["background_class"] == same["label_name"]).all()
    rand = frame[frame["variation"] == "mixed_rand"]
    assert (rand["background_class"] != rand["label_name"]).any()


def test_in9_images_are_named_by_their_files_and_unknown_backgrounds_are_none(tmp_path):
    root = write_in9(tmp_path / "bg", per_class=1, size=32)
    dataset = in9(IN9Config(root=str(root), image_size=32, val_per_class=0))
    data = dataset.variation_set("mixed_rand")
    info = dataset.image_info("mixed_rand", data)
    assert info["image"] == [str(p.relative_to(root)) for p, _ in data.samples]
    assert info["background_class"] == [None] * len(data)  # the fixture's backgrounds n09_<i> are no original image
    stem = Path(data.samples[0][0]).stem.split("_bg_")[1]
    (root / "original" / "val" / dataset.classes[3] / f"{stem}.JPEG").write_bytes(b"")  # now it is one, of class 3
    dataset = in9(IN9Config(root=str(root), image_size=32, val_per_class=0))
    data = dataset.variation_set("mixed_rand")
    assert dataset.image_info("mixed_rand", data)["background_class"][0] == dataset.classes[3]


def test_report_refuses_a_run_whose_predictions_disagree_with_its_metrics(trained, tmp_path):
    for name in ("kept", "edited"):
        shutil.copytree(trained, tmp_path / "runs" / name)
    edited = tmp_path / "runs" / "edited"
    frame = pd.read_parquet(edited / "predictions.parquet")
    first = frame.index[frame["variation"] == "mixed_rand"][0]
    frame.loc[first, "correct"] = not frame.loc[first, "correct"]
    frame.to_parquet(edited / "predictions.parquet", index=False)
    found = find_metrics([str(tmp_path / "runs")])
    assert [Path(r.source).name for r in found.finished] == ["kept"]
    ((path, reason),) = found.skipped
    rand = json.loads((edited / "metrics.json").read_text())["challenges"]["accuracy"]["mixed_rand"]
    changed = rand + (1 if frame.loc[first, "correct"] else -1) / (frame["variation"] == "mixed_rand").sum()
    assert Path(path).parent == edited and reason == (
        f"its per-image predictions do not give its accuracies (mixed_rand: {100 * changed:.2f}% in "
        f"predictions.parquet, {100 * rand:.2f}% in metrics.json): edited or mixed up"
    )


def test_worst_group_accuracy_of_a_hand_made_frame():
    rows = [  # (variation, object, background, correct)
        ("mixed_rand", "a", "a", True),
        ("mixed_rand", "a", "b", False),
        ("mixed_rand", "a", "b", True),
        ("mixed_rand", "b", "a", False),
        ("mixed_rand", "b", "b", True),
        ("mixed_next", "a", None, True),  # a background of unknown class: the variation has no groups
        ("original", "a", None, False),
    ]
    frame = pd.DataFrame(rows, columns=["variation", "label_name", "background_class", "correct"])
    frame["background_class"] = frame["background_class"].astype("string")
    assert group_accuracy(frame) == {
        "mixed_rand": {
            "worst_group_accuracy": 0.0,
            "worst_group": ["b", "a"],
            "groups": 4,
            "smallest_group": 1,
            "matrix": {"a": {"a": [1, 1], "b": [1, 2]}, "b": {"a": [0, 1], "b": [1, 1]}},
        }
    }


def test_a_runs_groups_are_its_predictions_and_the_report_shows_them(trained, tmp_path):
    frame = pd.read_parquet(trained / "predictions.parquet")
    groups = json.loads((trained / "metrics.json").read_text())["challenges"]["groups"]
    assert set(groups) == {"mixed_same", "mixed_rand", "mixed_next"}
    for variation, found in groups.items():
        cells: dict = {}
        for row in frame[frame["variation"] == variation].itertuples():
            cell = cells.setdefault((row.label_name, row.background_class), [0, 0])
            cell[0] += int(row.label == row.prediction)
            cell[1] += 1
        assert found["worst_group_accuracy"] == min(c / n for c, n in cells.values())
        matrix: dict = {}
        for (obj, bg), cell in cells.items():
            matrix.setdefault(obj, {})[bg] = cell
        assert found["groups"] == len(cells) and found["matrix"] == matrix
    assert groups["mixed_same"]["groups"] <= 9  # the object's own class only
    report([str(trained)], tmp_path / "report")
    table = pd.read_csv(tmp_path / "report" / "groups_synthetic.csv")
    assert table["Worst group mixed rand"].tolist() == [round(100 * groups["mixed_rand"]["worst_group_accuracy"], 2)]
    (figure,) = (tmp_path / "report").glob("groups_matrix_*.png")
    assert figure.read_bytes()[:4] == b"\x89PNG" and figure.name in (tmp_path / "report" / "report.md").read_text()
