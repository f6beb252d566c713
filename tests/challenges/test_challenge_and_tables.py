"""Background-challenge accuracy and BG-Gap, and the Table 5 files, against hand-computed values."""

import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from torch.utils.data import TensorDataset

from rrx.challenges.background import TABLE5_COLUMNS, BackgroundChallenge, table5
from rrx.record import Record
from rrx.runtime import Runtime
from rrx.tables import over_seeds, write_table

# Each "image" is a one-hot logit vector, so the identity model predicts its index.
PREDICTIONS = {
    "original": [0, 1, 2, 0],  # 3 of 4 correct
    "mixed_same": [0, 1, 2, 2],  # 3 of 4
    "mixed_rand": [1, 1, 0, 0],  # 1 of 4
    "mixed_next": [0, 0, 0, 0],  # 1 of 4
}
LABELS = torch.tensor([0, 1, 2, 1])


class FakeDataset:
    def variation_set(self, variation):
        x = torch.nn.functional.one_hot(torch.tensor(PREDICTIONS[variation]), 3).float()
        return TensorDataset(x, LABELS)


def test_accuracy_and_bg_gap():
    runtime = Runtime(torch.device("cpu"), amp=False, batch_size=3, num_workers=0, progress=False)
    challenge = BackgroundChallenge(SimpleNamespace(variations=list(PREDICTIONS)))
    results = challenge.evaluate(torch.nn.Identity(), FakeDataset(), runtime)
    assert results["accuracy"] == {"original": 0.75, "mixed_same": 0.75, "mixed_rand": 0.25, "mixed_next": 0.25}
    assert results["bg_gap"] == pytest.approx(0.5)


def test_no_bg_gap_without_both_mixed_variations():
    runtime = Runtime(torch.device("cpu"), amp=False, batch_size=3, num_workers=0, progress=False)
    results = BackgroundChallenge(SimpleNamespace(variations=["mixed_rand"])).evaluate(
        torch.nn.Identity(), FakeDataset(), runtime
    )
    assert "bg_gap" not in results


def _metrics(method, same, rand, nxt=None, orig=None):
    acc = {"mixed_same": same, "mixed_rand": rand}
    acc.update({k: v for k, v in {"mixed_next": nxt, "original": orig}.items() if v is not None})
    return Record(
        "train", {"architecture": "ResNet-18", "method": method}, challenges={"accuracy": acc, "bg_gap": same - rand}
    )


def test_table5_in_percent_with_thesis_columns():
    df = table5([_metrics("Standard", 0.92667, 0.82991, 0.80222, 0.96154), _metrics("Standard + RRDA", 0.883, 0.8341)])
    assert list(df.columns) == TABLE5_COLUMNS
    first = df.iloc[0]
    # in percent, not rounded: the tables round once, after the seeds are averaged (write_table)
    values = (first["Mixed same"], first["Mixed rand"], first["Mixed next"], first["Original"])
    assert values == pytest.approx((92.667, 82.991, 80.222, 96.154))
    assert first["BG Gap"] == pytest.approx(100 * (0.92667 - 0.82991))  # same - rand, as in every thesis table
    assert math.isnan(df.iloc[1]["Original"])


def test_seeds_are_averaged_before_the_table_rounds(tmp_path):
    """91.11... and 92.22... average to 91.666...: 91.67, where rounding each run first gave 91.665 -> 91.66."""
    runs = [_metrics("Standard", 0.95, 82 / 90, 0.7, 0.95), _metrics("Standard", 0.95, 83 / 90, 0.7, 0.95)]
    write_table(table5(runs), tmp_path / "table5")
    table = pd.read_csv(tmp_path / "table5.csv")
    assert table["Mixed rand"].tolist() == [91.67] and table["Mixed rand std"].tolist() == [0.79]
    assert "91.67 ± 0.79" in (tmp_path / "table5.md").read_text()


def test_table_files_are_written_whole_in_three_formats(tmp_path):
    df = table5([_metrics("Standard", 0.9, 0.8, 0.7, 0.95)])
    first = write_table(df, tmp_path / "table5")
    assert [p.name for p in first] == ["table5.csv", "table5.md", "table5.tex"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table5.csv", "table5.md", "table5.tex"]  # no temporary left
    assert pd.read_csv(first[0])["BG Gap"].tolist() == [10.0]
    assert "| ResNet-18" in first[1].read_text() and r"\toprule" in first[2].read_text()


def test_table8_and_edge_grid_in_percent():
    from rrx.challenges.background import table8
    from rrx.challenges.edge import edge_grid

    metrics = {
        "run": {"architecture": "ResNet-18", "method": "Standard"},
        "challenges": {
            "accuracy": {"only_fg": 0.8501, "only_bg_t": 0.3252, "only_bg_b": 0.1},
            "edge": {"original": {"5": 0.9, "10": 0.5}, "mixed_rand": {"5": 0.25, "10": 0.125}},
        },
    }
    metrics = Record.from_dict(metrics)
    assert table8([metrics]).drop(columns="_Original").to_dict("records") == [
        {
            "Architecture": "ResNet-18",
            "Method": "Standard",
            "Only FG": pytest.approx(85.01),
            "Only BG": pytest.approx(32.52),
        }
    ]
    grid = edge_grid(metrics)
    assert list(grid.columns) == ["Variation", "W=5", "W=10"]
    assert grid.to_dict("records") == [
        {"Variation": "original", "W=5": 90.0, "W=10": 50.0},
        {"Variation": "mixed_rand", "W=5": 25.0, "W=10": 12.5},
    ]


def test_report_keeps_datasets_apart_and_skips_broken_runs(tmp_path, caplog):
    import json

    from rrx.errors import RRXError
    from rrx.report.report import report

    def run(folder, dataset, acc):
        (tmp_path / folder).mkdir()
        metrics = {
            "run": {"architecture": "SmallCNN", "method": "Standard", "dataset": dataset},
            "challenges": {"accuracy": acc},
        }
        (tmp_path / folder / "metrics.json").write_text(json.dumps(metrics))

    run("a", "synthetic", {"original": 0.9, "mixed_same": 0.8, "mixed_rand": 0.5})
    run("b", "in9", {"only_fg": 0.7, "only_bg_t": 0.2})
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "metrics.json").write_text("{not json")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "metrics.json").write_text("{}")
    (tmp_path / "e").mkdir()  # a sweep job that failed
    (tmp_path / "e" / "error.txt").write_text("Traceback ...\nrrx.errors.RRXError: loss is nan at epoch 1, step 7\n")
    (tmp_path / "f").mkdir()  # a run stopped before its results
    (tmp_path / "f" / "checkpoint.pt").write_bytes(b"")
    tables = report([str(tmp_path)], tmp_path / "out")
    assert sorted(tables) == [
        "Background challenge (Table 5/6/12 shape), synthetic",
        "Only object / only background (Table 8/13 shape; Only BG = only_bg_t), in9",
    ]
    assert pd.read_csv(tmp_path / "out" / "table5_synthetic.csv")["Original"].tolist() == [90.0]
    assert pd.read_csv(tmp_path / "out" / "table8_in9.csv")["Only FG"].tolist() == [70.0]
    assert "skipped" in caplog.text and "c/metrics.json" in caplog.text and "no run or challenges" in caplog.text
    text = (tmp_path / "out" / "report.md").read_text()
    assert "Skipped (4)" in text and "failed: rrx.errors.RRXError: loss is nan at epoch 1, step 7" in text
    assert "/f`: no metrics.json (unfinished or stopped run)" in text
    assert text.index("## Dataset `in9`") < text.index("## Dataset `synthetic`")
    with pytest.raises(RRXError, match="no finished runs"):
        report([str(tmp_path / "c")], tmp_path / "out2")
    with pytest.raises(RRXError, match="no such folder"):
        report([str(tmp_path / "missing")], tmp_path / "out3")


def test_table9_and_table10_shapes():
    from rrx.challenges.adversarial import table9
    from rrx.report.tables import table10

    def run(dataset, method, acc, adv=None, variant=None):
        challenges = {"accuracy": {"original": acc}}
        if adv is not None:
            challenges["adversarial_accuracy"] = {"original": adv}
        return Record(
            "evaluate",
            {"architecture": "MLP", "method": method, "dataset": dataset, "variant": variant},
            challenges=challenges,
        )

    assert table9([run("toy_rules", "Standard + PGD", 0.981, 0.7512)]).to_dict("records") == [
        {"Model": "MLP Standard + PGD", "Test Accuracy": 98.1, "Adversarial Accuracy": 75.12}
    ]
    runs = [run("color_mnist", "RRR", 0.001), run("decoy_mnist", "RRR", 0.99), run("decoy_mnist", "Standard", 0.5)]
    mean, _ = over_seeds(table10(runs))
    assert mean.to_dict("records")[0] == {"Model": "MLP RRR", "ColorMNIST": 0.1, "DecoyMNIST": 99.0, "Seeds": 1}
    assert mean.iloc[1]["Model"] == "MLP Standard" and mean.iloc[1]["DecoyMNIST"] == 50.0
    with_baseline = table10(runs + [run("decoy_mnist", "Standard", 0.92, variant="none")])
    assert list(with_baseline.columns) == ["Model", "ColorMNIST", "DecoyMNIST", "DecoyMNIST (no decoy)"]
    mean, _ = over_seeds(with_baseline)
    assert mean.iloc[1]["DecoyMNIST"] == 50.0 and mean.iloc[1]["DecoyMNIST (no decoy)"] == 92.0


def test_run_files_mark_no_best_in_the_edge_grid(tmp_path):
    from rrx.results import write_results

    edge = {"original": {"5": 0.9, "10": 0.5}, "mixed_rand": {"5": 0.25, "10": 0.125}}
    write_results(
        tmp_path, Record("evaluate", {"architecture": "SmallCNN", "method": "Standard"}, challenges={"edge": edge})
    )
    text = (tmp_path / "edge.md").read_text()
    assert "90.00" in text and "**" not in text


# --- the challenge config group: every option from its component's dataclass, its values as the YAMLs had them ---
BACKGROUND = ["original", "mixed_same", "mixed_rand", "mixed_next"]
EVERY_VARIATION = [*BACKGROUND, "only_fg", "no_fg", "only_bg_b", "only_bg_t"]
EDGE = {"edge_variations": BACKGROUND, "widths": list(range(5, 55, 5)), "reference_size": 224}
SNR = {
    "attribution": ["saliency", "integrated_gradients"],
    "snr_variation": "original",
    "snr_max_images": None,
    "target": "label",
    "ig_steps": 50,
    "ig_baseline": "black",
}
OPTIONS = {
    "background": {"name": "background", "variations": BACKGROUND},
    **{v: {"name": "background", "variations": [v]} for v in EVERY_VARIATION},
    "signal": {"name": "background", "variations": ["original", "only_fg", "only_bg_t"]},
    "edge": {"name": "edge", **EDGE},
    "snr": {"name": "snr", **SNR},
    "all": {"name": "all", **EDGE, **SNR, "variations": EVERY_VARIATION},
    "gradient_map": {"name": "gradient_map", "map_variation": "original"},
    "patches": {"name": "patches"},
    "adversarial_backgrounds": {
        "name": "adversarial_backgrounds",
        "stats_per_class": 10,
        "batch_size": None,
        "top_k": 5,
    },
    "zero_shot": {"name": "zero_shot", "variations": [*BACKGROUND, "only_fg", "only_bg_t"]},
}


def _challenge_cfg(*overrides, command="train"):
    from hydra import compose, initialize_config_module

    with initialize_config_module("rrx.conf", version_base="1.3"):
        return compose(command, overrides=["checkpoint=run"] * (command == "evaluate") + list(overrides))


def test_every_challenge_option_composes_with_the_values_it_always_had():
    from omegaconf import OmegaConf

    from rrx.challenges import CHALLENGES
    from rrx.config import options

    assert sorted(options(CHALLENGES)) == sorted(OPTIONS)
    for option, expected in OPTIONS.items():
        cfg = OmegaConf.to_container(_challenge_cfg(f"challenge={option}").challenge)
        assert cfg == expected and list(cfg) == list(expected), option  # the suite's keys in the order they had
    for command in ("train", "evaluate"):
        assert OmegaConf.to_container(_challenge_cfg(command=command).challenge) == OPTIONS["background"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["challenge=mixed_rand", "challenge.widths=[5]"],
            "challenge.widths: challenge=background has no key 'widths'; its keys: name, variations",
        ),
        (
            ["challenge=all", "challenge.top_k=3"],
            "challenge.top_k: challenge=all has no key 'top_k'; its keys: name, edge_variations, widths,",
        ),
        (
            ["challenge=patches", "challenge.variations=[original]"],
            "challenge.variations: challenge=patches has no key 'variations'; its keys: name",
        ),
        (["challenge=snr", "challenge.ig_steps=many"], "challenge.ig_steps=many: must be an integer"),
        (["challenge=mixed"], "unknown challenge 'mixed'; known: adversarial_backgrounds, all, background, edge,"),
    ],
)
def test_a_key_the_challenge_does_not_have_is_one_line(overrides, message):
    from rrx.config import explain

    with pytest.raises(Exception) as err:
        _challenge_cfg(*overrides)
    line = explain(err.value)
    assert line is not None and "\n" not in line and line.startswith(message), line


@pytest.mark.parametrize(
    "override, message",
    [
        ("challenge=edge challenge.widths=[5,0]", "challenge.widths=[5,0]: must be >= 1"),
        ("challenge=all challenge.reference_size=0", "challenge.reference_size=0: must be >= 1"),
        ("challenge=snr challenge.snr_max_images=0", "challenge.snr_max_images=0: must be >= 1"),
        ("challenge=all challenge.ig_steps=0", "challenge.ig_steps=0: must be >= 1"),
        ("challenge=snr challenge.target=truth", "challenge.target=truth; known: label, prediction"),
        ("challenge=snr challenge.ig_baseline=white", "challenge.ig_baseline=white; known: black, mean"),
        ("challenge=adversarial_backgrounds challenge.stats_per_class=0", "challenge.stats_per_class=0: must be >= 1"),
        ("challenge=adversarial_backgrounds challenge.batch_size=0", "challenge.batch_size=0: must be >= 1"),
        ("challenge=adversarial_backgrounds challenge.top_k=0", "challenge.top_k=0: must be >= 1"),
    ],
)
def test_a_challenge_value_out_of_range_or_choices_stops_the_check(override, message):
    from omegaconf import OmegaConf

    from rrx.config import check
    from rrx.errors import RRXError

    cfg = _challenge_cfg(*override.split())
    with pytest.raises(RRXError) as err:
        check(OmegaConf.masked_copy(cfg, ["challenge"]))  # the other groups' values are theirs to test
    assert str(err.value) == message


def test_the_snr_target_is_spelled_as_the_analyses_target():
    """``challenge.target`` (SNR) and ``analysis.target`` (localisation) both name the class explained."""
    from dataclasses import fields

    from rrx.analyses.common import TARGETS
    from rrx.challenges.snr import BASELINES, SNRConfig

    choices = {f.name: f.metadata.get("choices") for f in fields(SNRConfig)}
    assert choices["target"] == TARGETS == ("label", "prediction") and choices["ig_baseline"] == BASELINES


def test_create_challenge_fills_in_the_defaults_and_checks_the_keys():
    from rrx.challenges import create_challenge
    from rrx.errors import RRXError

    snr = create_challenge({"name": "snr", "attribution": "saliency"})
    assert (snr.attributions, snr.max_images, snr.steps, snr.baseline) == (["saliency"], None, 50, "black")
    background, edge, _ = create_challenge({"name": "all", "widths": [3]}).parts
    assert background.variations == EVERY_VARIATION and (edge.widths, edge.reference_size) == ([3], 224)
    with pytest.raises(RRXError, match="^challenge.widths: challenge=background has no key 'widths'; its keys: name, "):
        create_challenge({"name": "background", "widths": [5]})
    with pytest.raises(RRXError, match=r"^challenge.widths=\[0\]: must be >= 1$"):
        create_challenge({"name": "edge", "widths": [0]})


def test_mixed_rand_of_held_out_images_puts_each_object_on_the_others_background():
    """Two images (a batch of two: each is the other's partner): image k has background k and, in its centre, an
    object of value 0.5 + k / 4; a model reading the corner (the background) is wrong on both mixed images, one
    reading the centre (the object) right on both."""
    from torch.utils.data import DataLoader, TensorDataset

    from rrx.challenges.accuracy import mixed_rand_accuracy
    from rrx.runtime import Runtime

    x = torch.stack([torch.full((3, 8, 8), float(k)) for k in (0, 1)])
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 3:5, 3:5] = 1
    x[0, :, 3:5, 3:5], x[1, :, 3:5, 3:5] = 0.5, 0.75
    y = torch.tensor([0, 1])

    class Reads(torch.nn.Module):
        def __init__(self, row, col, split):
            super().__init__()
            self.row, self.col, self.split = row, col, split

        def forward(self, images):
            value = images[:, 0, self.row, self.col]
            return torch.stack([self.split - value, value - self.split], 1)  # class 1 above the split

    runtime = Runtime(torch.device("cpu"), amp=False, batch_size=2, num_workers=0, progress=False)
    loader = DataLoader(TensorDataset(x, y, mask), batch_size=2)
    corner, centre = Reads(0, 0, 0.5), Reads(3, 3, 0.625)
    assert [int(m(x).argmax(1).eq(y).sum()) for m in (corner, centre)] == [2, 2]  # both right on the originals
    assert mixed_rand_accuracy(corner, loader, runtime, torch.Generator().manual_seed(0)) == 0.0
    assert mixed_rand_accuracy(centre, loader, runtime, torch.Generator().manual_seed(0)) == 1.0
