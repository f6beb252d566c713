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
    assert (first["Mixed same"], first["Mixed rand"], first["Mixed next"], first["Original"]) == (
        92.67,
        82.99,
        80.22,
        96.15,
    )
    assert first["BG Gap"] == 9.68  # same - rand, as in every thesis table
    assert math.isnan(df.iloc[1]["Original"])


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
        {"Architecture": "ResNet-18", "Method": "Standard", "Only FG": 85.01, "Only BG": 32.52}
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
