"""``rrx report``: seeds as mean ± std, best values marked, thesis row order, lambda choice over seeds, figures."""

import json
import statistics
from pathlib import Path

import pandas as pd
import pytest
from fixtures import RECORDED

from rrx.challenges.background import table5, table8
from rrx.record import Record
from rrx.report.report import report
from rrx.report.sweep import lambda_tables
from rrx.tables import latex, markdown, over_seeds, thesis_order, write_table


def _run(arch, method, same, rand, orig, seed=0, lam=0.0, rrda=False, dataset="synthetic", val=None, **challenges):
    return {
        "run": {"architecture": arch, "method": method, "dataset": dataset, "lam": lam, "rrda": rrda, "seed": seed},
        "train": {"val_accuracy": val, "device": "cpu"},
        "challenges": {
            "accuracy": {"mixed_same": same, "mixed_rand": rand, "original": orig},
            "bg_gap": same - rand,
            **challenges,
        },
    }


def records(runs: list[dict]) -> list[Record]:
    """The records of ``metrics.json`` dicts (``_run``'s form, which the report tests also write as files)."""
    return [Record.from_dict(r) for r in runs]


def test_seeds_become_mean_and_sample_std_with_their_count():
    runs = [
        _run("ResNet-18", "Standard", 0.90, 0.80, 0.95, seed=0),
        _run("ResNet-18", "Standard", 0.94, 0.70, 0.97, seed=1),
        _run("ResNet-18", "Standard + RRDA", 0.92, 0.91, 0.96),
    ]
    mean, std = over_seeds(table5(records(runs)))
    standard = mean.iloc[0]
    assert standard["Seeds"] == 2 and mean.iloc[1]["Seeds"] == 1
    assert standard["Mixed same"] == pytest.approx(92.0) and standard["BG Gap"] == pytest.approx(17.0)
    assert std.iloc[0]["BG Gap"] == pytest.approx(statistics.stdev([10.0, 24.0]))  # ddof=1: 9.90
    text = markdown(table5(records(runs)))
    assert "| 17.00 ± 9.90 |" in text and "Seeds" in text
    assert r"17.00 $\pm$ 9.90" in latex(table5(records(runs)))


def test_best_value_per_column_is_bold_lower_for_bg_gap():
    runs = [
        _run("ResNet-18", "Standard", 0.90, 0.80, 0.95),
        _run("ResNet-18", "Standard + RRDA", 0.92, 0.91, 0.96),
        _run("ViT", "Standard", 0.93, 0.85, 0.96),
    ]
    lines = markdown(table5(records(runs))).splitlines()
    rrda = next(line for line in lines if "RRDA" in line)
    assert "**1.00**" in rrda  # lowest BG Gap
    assert "**96.00**" in rrda and "**96.00**" in lines[-1]  # a tie on Original: both marked
    assert "**93.00**" in lines[-1]  # highest Mixed same
    assert r"\textbf{1.00}" in latex(table5(records(runs))) and r"\toprule" in latex(table5(records(runs)))
    single = markdown(table5(records(runs[:1])))
    assert "**" not in single and "Seeds" not in single and "±" not in single


def test_latex_escapes_text_and_headers():
    df = pd.DataFrame({"Architecture": ["ViT"], "Method": ["A_B & C"], "val_accuracy": [1.0]})
    text = latex(df)
    assert r"A\_B \& C" in text and r"val\_accuracy" in text


def test_rows_follow_the_thesis_order():
    df = pd.DataFrame(
        {
            "Architecture": ["ViT", "ResNet-18", "ResNet-18", "ResNet-18", "ResNet-18", "ResNet-18"],
            "Method": ["Standard", "Standard + RRDA", "RRR (lambda=10)", "Standard", "ActDiff", "RRR + FGSM"],
        }
    )
    assert thesis_order(df).values.tolist() == [
        ["ResNet-18", "Standard"],
        ["ResNet-18", "ActDiff"],
        ["ResNet-18", "RRR (lambda=10)"],
        ["ResNet-18", "RRR + FGSM"],
        ["ResNet-18", "Standard + RRDA"],
        ["ViT", "Standard"],
    ]


def test_best_lambda_is_chosen_on_the_mean_over_seeds():
    # lambda 1: 0.90 and 0.70 (mean 0.80); lambda 2: 0.85 and 0.85 (mean 0.85): the best single run is lambda 1
    runs = [
        _run("ResNet-18", "RRR", 0.9, 0.8, 0.9, seed=s, lam=lam, val=v)
        for s, lam, v in [(0, 1.0, 0.90), (1, 1.0, 0.70), (0, 2.0, 0.85), (1, 2.0, 0.85)]
    ]
    every, best = lambda_tables(records(runs), "val_accuracy")
    assert len(every) == 4 and set(best["lambda"]) == {2.0} and len(best) == 2
    mean, _ = over_seeds(best)
    assert mean.iloc[0]["val_accuracy"] == pytest.approx(85.0) and mean.iloc[0]["Seeds"] == 2


def test_csv_keeps_means_stds_and_seed_counts(tmp_path):
    runs = [
        _run("ResNet-18", "Standard", 0.90, 0.80, 0.95, seed=0),
        _run("ResNet-18", "Standard", 0.94, 0.70, 0.97, seed=1),
    ]
    csv = pd.read_csv(write_table(table5(records(runs)), tmp_path / "t")[0])
    assert (
        csv.loc[0, "Original"] == 96.0
        and csv.loc[0, "Original std"] == pytest.approx(1.41)
        and csv.loc[0, "Seeds"] == 2
    )


def _write(folder, metrics):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_report_writes_figures_and_report_md(tmp_path):
    edge = {"edge": {"original": {"5": 0.9, "10": 0.5}, "mixed_rand": {"5": 0.6, "10": 0.3}}}
    snr = {"snr": {"saliency": {"median": 2.0, "per_image": [1.0, 2.0, 4.0], "undefined": 0}}}
    runs = [
        _run("SmallCNN", "Standard", 0.95, 0.80, 0.97, seed=0, **edge, **snr),
        _run("SmallCNN", "Standard", 0.93, 0.75, 0.96, seed=1, **edge, **snr),
        _run("SmallCNN", "Standard + RRDA", 0.96, 0.95, 0.97, rrda=True, **edge, **snr),
        _run("ViT (test)", "Standard", 0.85, 0.40, 0.90, **edge),
        _run("ViT (test)", "Standard + RRDA", 0.80, 0.78, 0.82, rrda=True),
        _run("SmallCNN", "Standard", 0.5, 0.5, 0.5, dataset="other"),
    ]
    for i, metrics in enumerate(runs):
        _write(tmp_path / "runs" / str(i), metrics | {"started": 100 * i, "finished": 100 * i + 60})
    report([str(tmp_path / "runs")], tmp_path / "out", command="rrx report runs=x")
    names = {p.name for p in (tmp_path / "out").iterdir()}
    for figure in (
        "fig14_correlation_synthetic.png",
        "fig15_bg_gap_synthetic.png",
        "fig16_bg_gap_vs_original_synthetic.png",
        "fig17b_edge_synthetic.png",
        "fig18_snr_saliency_synthetic.png",
    ):
        assert figure in names
        assert (tmp_path / "out" / figure).read_bytes()[:4] == b"\x89PNG"
    assert "fig19_snr_integrated_gradients_synthetic.png" not in names  # no run has it
    assert "fig14_correlation_other.png" not in names  # one run: no correlation
    text = (tmp_path / "out" / "report.md").read_text()
    assert text.startswith("# rrx report\n\nProduced by `rrx report runs=x`")
    assert (
        "Wall time of the 6 training runs (data, training and every challenge): 6.0 min in all, "
        "9.3 min from the first start to the last finish, on cpu." in text
    )
    assert "6 finished runs" in text and "![Fig. 15: BG-Gap distributions](fig15_bg_gap_synthetic.png)" in text
    assert "## Dataset `other` (1 runs)" in text and "## Dataset `synthetic` (5 runs)" in text
    assert "| SmallCNN       | Standard        |" in text  # seeds joined in one row


def test_lambda_curve_only_for_methods_with_several_lambdas(tmp_path):
    runs = [_run("SmallCNN", "RRR", 0.9, 0.5, 0.9, seed=s, lam=lam, val=0.9) for lam in (0.1, 1.0) for s in (0, 1)]
    runs.append(_run("SmallCNN", "Standard", 0.95, 0.9, 0.97))
    for i, metrics in enumerate(runs):
        _write(tmp_path / "runs" / str(i), metrics)
    report([str(tmp_path / "runs")], tmp_path / "out")
    assert (tmp_path / "out" / "lambda_curve_synthetic.png").read_bytes()[:4] == b"\x89PNG"
    report([str(tmp_path / "runs" / "4")], tmp_path / "out2")  # Standard alone: no lambda to plot against
    assert not (tmp_path / "out2" / "lambda_curve_synthetic.png").exists()


def test_report_on_a_folder_without_runs_says_so(tmp_path):
    from rrx.errors import RRXError

    (tmp_path / "empty").mkdir()
    with pytest.raises(RRXError, match="no finished runs"):
        report([str(tmp_path / "empty")], tmp_path / "out")


def test_a_model_at_chance_is_not_the_best_bg_gap():
    runs = [
        _run("ViT", "ActDiff", 0.1111, 0.1111, 0.1111),
        _run("ViT", "Standard + RRDA", 0.95, 0.93, 0.96),
        _run("ViT", "Standard", 0.95, 0.60, 0.97),
    ]
    lines = markdown(table5(records(runs))).splitlines()
    assert "**0.00**" not in lines[2] and "**2.00**" in next(line for line in lines if "RRDA" in line)


def test_snr_table_gives_each_runs_median_and_marks_nothing(tmp_path):
    def snr(s, ig):
        return {
            "snr": {
                "saliency": {"median": s, "per_image": [s]},
                "integrated_gradients": {"median": ig, "per_image": [ig]},
            }
        }

    runs = [
        _run("SmallCNN", "RRR", 0.9, 0.2, 0.9, seed=0, **snr(8.0, 4.0)),
        _run("SmallCNN", "RRR", 0.9, 0.2, 0.9, seed=1, **snr(6.0, 2.0)),
        _run("SmallCNN", "Standard", 0.9, 0.8, 0.9, **snr(3.0, 3.5)),
    ]
    for i, metrics in enumerate(runs):
        _write(tmp_path / "runs" / str(i), metrics)
    report([str(tmp_path / "runs")], tmp_path / "out")
    csv = pd.read_csv(tmp_path / "out" / "snr_synthetic.csv")
    assert csv.loc[0, ["Method", "SNR Saliency", "SNR Integrated Gradients", "Seeds"]].tolist() == [
        "Standard",
        3.0,
        3.5,
        1,
    ]
    assert csv.loc[1, "SNR Saliency"] == 7.0 and csv.loc[1, "SNR Integrated Gradients std"] == pytest.approx(1.41)
    assert "**" not in (tmp_path / "out" / "snr_synthetic.md").read_text()


def test_table8_puts_datasets_side_by_side(tmp_path):
    def run(dataset, method, fg, bg, seed=0):
        return {
            "run": {"architecture": "ResNet-18", "method": method, "dataset": dataset, "seed": seed},
            "challenges": {"accuracy": {"only_fg": fg, "only_bg_t": bg, "original": 0.95}},
        }

    runs = [
        run("in9", "Standard", 0.8, 0.4),
        run("in9", "Standard", 0.6, 0.2, seed=1),
        run("in9", "Standard + RRDA", 0.9, 0.25),
        run("rival10", "Standard", 0.7, 0.5),
        run("rival10", "Standard + RRDA", 0.85, 0.45),
    ]
    for i, metrics in enumerate(runs):
        _write(tmp_path / "runs" / str(i), metrics)
    report([str(tmp_path / "runs")], tmp_path / "out")
    csv = pd.read_csv(tmp_path / "out" / "table8.csv")
    assert list(csv.columns[:6]) == [
        "Architecture",
        "Method",
        "in9 Only FG",
        "in9 Only BG",
        "rival10 Only FG",
        "rival10 Only BG",
    ]
    assert csv.loc[0, ["in9 Only FG", "in9 Only BG", "rival10 Only FG", "Seeds"]].tolist() == [70.0, 30.0, 70.0, 2]
    rrda = next(line for line in (tmp_path / "out" / "table8.md").read_text().splitlines() if "RRDA" in line)
    assert rrda.count("**") == 2 * 4  # highest Only FG and lowest Only BG of both datasets
    assert "_Original" not in csv.columns


def test_table8_marks_the_lowest_only_bg_among_models_that_classify():
    def run(method, fg, bg, orig):
        return {
            "run": {"architecture": "ViT", "method": method},
            "challenges": {"accuracy": {"only_fg": fg, "only_bg_t": bg, "original": orig}},
        }

    # a Standard model that classifies (original 99 %) competes although its Only FG is low; one at chance does not
    text = markdown(
        table8(
            records(
                [
                    run("Standard", 0.3, 0.5, 0.99),
                    run("ActDiff", 0.11, 0.11, 0.11),
                    run("Standard + RRDA", 0.9, 0.2, 0.98),
                ]
            )
        )
    )
    lines = text.splitlines()
    assert "_Original" not in text and "**" not in lines[3] and "**20.00**" in lines[4]


def test_evaluations_of_the_seeds_of_one_configuration_share_a_row(tmp_path):
    """``rrx evaluate checkpoint=<run>`` of two seeds: one row (their checkpoints differ, their training configs only
    in the seed); evaluations of two RRDA fills: two rows, told apart by the training runs' configs."""

    def write(name, fill, seed, acc):
        train = tmp_path / "train" / name
        (train / ".hydra").mkdir(parents=True)
        (train / ".hydra" / "config.yaml").write_text(f"seed: {seed}\nmethod:\n  fill: {fill}\n")
        folder = tmp_path / "runs" / name
        _write(folder, _run("SmallCNN", "Standard + RRDA", acc, acc - 0.01, acc, seed=seed))
        (folder / ".hydra").mkdir()
        (folder / ".hydra" / "config.yaml").write_text(f"seed: 0\ncheckpoint: {train}\nattack:\n  eps: 0.1\n")

    write("a", "black", 0, 0.90)
    write("b", "black", 1, 0.92)
    write("c", "tile", 0, 0.80)
    write("d", "tile", 1, 0.82)
    report([str(tmp_path / "runs")], tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "table5_synthetic.csv")
    assert table["Method"].tolist() == [
        "Standard + RRDA [train.method.fill=black]",
        "Standard + RRDA [train.method.fill=tile]",
    ]
    assert table["Original"].tolist() == [pytest.approx(91.0), pytest.approx(81.0)] and table["Seeds"].tolist() == [
        2,
        2,
    ]


def test_runs_of_one_name_but_different_configs_are_not_averaged_as_seeds(tmp_path):
    """Two RRDA fills, two seeds each: two rows, each a mean over its own seeds;
    a no-decoy baseline is no difference."""

    def write(name, fill, seed, acc, variant="cdep"):
        folder = tmp_path / "runs" / name
        _write(folder, _run("SmallCNN", "Standard + RRDA", acc, acc - 0.01, acc, seed=seed))
        (folder / ".hydra").mkdir()
        (folder / ".hydra" / "config.yaml").write_text(
            f"seed: {seed}\nmethod:\n  fill: {fill}\n  lam: 0.0\ndataset:\n  variant: {variant}\n"
            "trainer:\n  progress: false\n"
        )

    write("a", "black", 0, 0.90)
    write("b", "black", 1, 0.92)
    write("c", "tile", 0, 0.80)
    write("d", "tile", 1, 0.82, variant="none")
    report([str(tmp_path / "runs")], tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "table5_synthetic.csv")
    assert table["Method"].tolist() == ["Standard + RRDA [method.fill=black]", "Standard + RRDA [method.fill=tile]"]
    assert table["Original"].tolist() == [pytest.approx(91.0), pytest.approx(81.0)] and table["Seeds"].tolist() == [
        2,
        2,
    ]


def _one_run_report(tmp_path, runs, out="out"):
    """report.md and the Table 5 CSV of ``rrx report runs=<runs>``."""
    report(runs, tmp_path / out)
    return (tmp_path / out / "report.md").read_text(), pd.read_csv(tmp_path / out / "table5_synthetic.csv")


def test_a_run_named_twice_is_counted_once_with_one_warning(tmp_path, monkeypatch, caplog):
    """A relative and an absolute spelling, or a symlink and its folder, are one run: not two seeds with a std of 0."""
    _write(tmp_path / "mix" / "fin", _run("SmallCNN", "Standard", 0.90, 0.80, 0.95))
    (tmp_path / "link").symlink_to(tmp_path / "mix" / "fin")
    monkeypatch.chdir(tmp_path)
    for out, runs in [
        ("a", ["mix/fin", str(tmp_path / "mix" / "fin")]),
        ("b", ["link", "mix/fin"]),
        ("c", ["mix", str(tmp_path / "link")]),
    ]:
        caplog.clear()
        text, table = _one_run_report(tmp_path, runs, out)
        assert "\n1 finished runs from" in text
        assert len(table) == 1 and "Seeds" not in table.columns and table.loc[0, "Original"] == pytest.approx(95.0)
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1 and "counted once" in warnings[0], warnings
        first, second = (str(Path(r)) if r != "mix" else "mix/fin" for r in runs)
        assert f"{second} is the same folder as {first}" in warnings[0]


def test_a_run_stopped_before_its_first_checkpoint_and_a_killed_analysis_are_listed(tmp_path):
    """A run that diverged in epoch 1 has only .hydra/, train.log and status.json; a killed ``rrx analyze`` only
    .hydra/, analyze.log and some figures. Both are listed as unfinished; a report's own folder is no run."""
    from rrx.outputs import write_status

    runs = tmp_path / "runs"
    _write(runs / "fin", _run("SmallCNN", "Standard", 0.90, 0.80, 0.95))
    diverged = runs / "diverged"
    (diverged / ".hydra").mkdir(parents=True)
    (diverged / ".hydra" / "hydra.yaml").write_text("hydra:\n  job:\n    name: train\n")
    (diverged / "train.log").write_text("run stopped\n")
    reason = "non-finite loss at epoch 1, step 3 (no epoch finished, no checkpoint)"
    write_status(diverged, "stopped", 0, 3, reason)
    killed = runs / "killed"
    (killed / ".hydra").mkdir(parents=True)
    (killed / ".hydra" / "hydra.yaml").write_text("hydra:\n  job:\n    name: analyze\n")
    (killed / "analyze.log").write_text("Analysis localisation of SmallCNN\n")
    (killed / "localisation_examples.png").write_bytes(b"\x89PNG")
    earlier = runs / "report"
    (earlier / ".hydra").mkdir(parents=True)
    (earlier / ".hydra" / "hydra.yaml").write_text("hydra:\n  job:\n    name: report\n")
    (earlier / "report.md").write_text("# rrx report\n")
    text, table = _one_run_report(tmp_path, [str(runs)])
    assert "\n1 finished runs from" in text and len(table) == 1
    assert "Skipped (2):" in text
    assert f"- `{diverged}`: unfinished, stopped after epoch 0 of 3: {reason}" in text
    assert (
        f"- `{killed}`: unfinished rrx analyze: no metrics.json (killed, failed or still running; see its log)" in text
    )
    assert f"`{earlier}`" not in text


def test_a_folder_named_like_a_pattern_is_that_folder(tmp_path):
    """``runs=/x/r[ab]`` where ``r[ab]`` exists is that folder, not the glob matching ``ra``."""
    _write(tmp_path / "r[ab]", _run("SmallCNN", "Standard", 0.90, 0.80, 0.95))
    _write(tmp_path / "ra", _run("SmallCNN", "Standard", 0.50, 0.40, 0.55))
    text, table = _one_run_report(tmp_path, [str(tmp_path / "r[ab]")])
    assert "\n1 finished runs from" in text and table["Original"].tolist() == [pytest.approx(95.0)]
    _write(tmp_path / "rb", _run("SmallCNN", "Standard", 0.70, 0.60, 0.75))
    _, table = _one_run_report(tmp_path, [str(tmp_path / "r[a-b]")], "glob")  # no such folder: a glob
    assert table["Original"].tolist() == [pytest.approx(65.0)] and table["Seeds"].tolist() == [2]


BEFORE_ONE_RECORD = RECORDED / "before_one_record"


def test_records_written_before_the_one_record_give_the_report_they_gave(tmp_path, monkeypatch):
    """``metrics.json`` files of every command and both tasks, written by rrx before the typed record (two seeds with
    every challenge, a lambda sweep, an evaluation and two analyses merged into their runs, an ADA segmentation run)
    and the report that rrx made of them: today's ``rrx report`` reads them and writes the same tables, byte for
    byte, and the same report.md."""
    import shutil

    copy = tmp_path / "fx"
    shutil.copytree(BEFORE_ONE_RECORD / "runs", copy / "runs")
    for path in copy.rglob("*"):  # the runs were made in /tmp/fx: their configs and evaluations name it
        if path.is_file():
            path.write_text(path.read_text().replace("/tmp/fx", str(copy)))
    monkeypatch.chdir(copy)  # the evaluations' configs name their checkpoints relative to it
    report(["runs"], copy / "out", command="rrx report runs=runs hydra.run.dir=report_old")
    expected = sorted(p.name for p in (BEFORE_ONE_RECORD / "report").iterdir())
    assert sorted(p.name for p in (copy / "out").iterdir() if p.suffix in (".md", ".csv", ".tex")) == expected
    for name in expected:
        made, before = (copy / "out" / name).read_text(), (BEFORE_ONE_RECORD / "report" / name).read_text()
        if name == "report.md":  # its third line names the date it was made on
            made, before = (text.split("\n", 3)[3] for text in (made, before))
        assert made == before, name
    assert Record.read(copy / "runs" / "an_loc").command == "analyze"
    assert Record.read(copy / "runs" / "seg_ada").task == "segmentation"
    assert Record.read(copy / "runs" / "eval_grad").command == "evaluate"


def test_a_lambda_chosen_on_a_test_variation_is_marked(tmp_path, caplog):
    runs = [
        _run("SmallCNN", "RRR", 0.9, 0.5 + lam / 10, 0.9, seed=s, lam=lam, val=0.9)
        for lam in (0.1, 1.0)
        for s in (0, 1)
    ]
    for i, metrics in enumerate(runs):
        _write(tmp_path / "runs" / str(i), metrics)
    report([str(tmp_path / "runs")], tmp_path / "held_out", select_by="val_accuracy")
    assert "selected on the test set" not in (tmp_path / "held_out" / "report.md").read_text()
    report([str(tmp_path / "runs")], tmp_path / "test", select_by="mixed_rand")
    text = (tmp_path / "test" / "report.md").read_text()
    assert "### Best lambda by mixed_rand, synthetic (selected on the test set)" in text
    assert "> **Warning:** lambda chosen by mixed_rand, a test-split accuracy" in text
    assert "a test-split accuracy" in caplog.text
