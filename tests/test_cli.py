"""The ``rrx`` command as users type it (subprocesses), on the tiny config."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import TINY
from fixtures.in9 import VARIATIONS, write_in9
from fixtures.mnist import write_mnist
from fixtures.rival10 import write_rival10
from fixtures.runner import REPO, one_line_error, rrx

from rrx.data.synthetic import SyntheticSpec, materialise


@pytest.fixture
def tiny(cache_dir):
    return [*TINY, f"dataset.cache_dir={cache_dir}"]


def test_help_lists_commands():
    out = rrx("--help").stdout
    for command in ("train", "evaluate", "report", "inspect"):
        assert f"  {command}" in out
    bad = rrx("fly", check=False)
    assert bad.returncode != 0 and "unknown command 'fly'" in bad.stderr


@pytest.mark.parametrize(
    "args, line",
    [
        (["method.lam=7"], "method.lam: method=standard has no key 'lam'; its keys: name, rrda, pairing, fill"),
        (["method=rrr", "method.lam=heavy"], "method.lam=heavy: must be a number (or null)"),
        (["method=rrr", "method.reduction=max"], "method.reduction=max; known: mean, sum"),
        (
            ["method=rrrr"],
            "unknown method 'rrrr'; known: actdiff, actdiff_rrda, ada, balanced, cdep, dfr, dfr_agree, eg, gradmask, "
            "groupdro, jtt, rrda",
        ),
        (["method=rrr", "+method.weight=3"], "method.weight: method=rrr has no key 'weight'"),
    ],
)
def test_a_key_the_chosen_component_lacks_or_a_bad_value_is_one_line(args, line, tmp_path):
    """Typed component configs (rrx.config): Hydra refuses the key or value while composing, and the command says so
    in one line naming the key, the component and its keys; nothing is left behind."""
    result = rrx("train", *args, cwd=tmp_path, check=False)
    assert one_line_error(result) == f"rrx: error: {line}" or line in one_line_error(result)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_help_lists_the_keys_of_the_chosen_components():
    out = rrx("train", "method=ada", "--help").stdout
    methods = (
        "actdiff, actdiff_rrda, ada, balanced, cdep, dfr, dfr_agree, eg, gradmask, groupdro, jtt, rrda, rrr, standard"
    )
    assert f"method: {methods}" in out
    assert "method.window: an integer = 8  [>= 1]" in out and "Z: side of the erased window, in pixels" in out
    assert "method.lam" not in out  # ADA weighs no penalty
    assert "method.reduction: a string = mean" in rrx("train", "method=rrr", "--help").stdout


def test_help_lists_each_commands_own_keys():
    out = rrx("export", "--help").stdout
    assert "  checkpoint: a string = ???\n      the run folder or checkpoint.pt to export" in out
    assert "  format: a string = madry  [madry | state_dict]" in out
    assert "  checkpoint: a string (or null) = null" in rrx("evaluate", "--help").stdout


def test_cfg_job_prints_the_composed_config():
    out = rrx("train", "method=rrda", "--cfg", "job").stdout
    assert "rrda: true" in out and "name: resnet18" in out and "bg_correlation: 0.9" in out


def test_train_evaluate_report(tiny, tmp_path):
    run = tmp_path / "run"
    rrx("train", *tiny, f"hydra.run.dir={run}")
    trained = json.loads((run / "metrics.json").read_text())

    rrx(
        "evaluate",
        f"checkpoint={run}",
        "challenge=mixed_rand",
        "trainer.progress=false",
        f"hydra.run.dir={tmp_path / 'eval'}",
    )
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert evaluated["challenges"]["accuracy"] == {"mixed_rand": trained["challenges"]["accuracy"]["mixed_rand"]}
    assert json.loads((run / "metrics.json").read_text()) == trained  # the training run is untouched

    rrx(
        "evaluate",
        f"checkpoint={run}",
        "challenge=signal",
        "trainer.progress=false",
        f"hydra.run.dir={tmp_path / 'eval2'}",
    )
    signal = json.loads((tmp_path / "eval2" / "metrics.json").read_text())["challenges"]["accuracy"]

    out = rrx("report", f"runs={tmp_path}", f"hydra.run.dir={tmp_path / 'report'}").stdout
    # both evaluations join the training run's row: one run, not three
    table5 = pd.read_csv(tmp_path / "report" / "table5_synthetic.csv")
    assert len(table5) == 1 and "SmallCNN" in out
    assert table5["BG Gap"].tolist() == [round(100 * trained["challenges"]["bg_gap"], 2)]
    table8 = pd.read_csv(tmp_path / "report" / "table8_synthetic.csv")
    assert table8["Only FG"].tolist() == [round(100 * signal["only_fg"], 2)]
    text = (tmp_path / "report" / "report.md").read_text()
    assert f"Produced by `rrx report runs={tmp_path} hydra.run.dir={tmp_path / 'report'}`" in text

    # provenance: the command line, this checkout's commit, the checkpoint evaluated by its hash
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    for record, command in ((trained, f"rrx train {' '.join(tiny)} hydra.run.dir={run}"), (evaluated, "rrx evaluate")):
        assert record["provenance"]["command"].startswith(command)
        assert record["provenance"]["rrx"]["commit"] == head and record["provenance"]["versions"]["torch"]
    assert trained["provenance"]["weights"] == {"pretrained": False}  # SmallCNN from scratch
    digest = hashlib.sha256((run / "checkpoint.pt").read_bytes()).hexdigest()
    assert evaluated["provenance"]["weights"] == {
        "checkpoint": str((run / "checkpoint.pt").resolve()),
        "sha256": digest,
    }
    assert "## Provenance" in text and "All 3 results: rrx " in text  # the run and its two evaluations
    assert set(json.loads((tmp_path / "report" / "provenance.json").read_text())["results"]) == {
        str(p) for p in (run, tmp_path / "eval", tmp_path / "eval2")
    }


@pytest.mark.slow
def test_multirun_sweeps_and_a_failing_job_does_not_stop_it(tiny, tmp_path):
    sweep = tmp_path / "sweep"
    result = rrx(
        "train",
        "-m",
        *tiny,
        "method=standard,rrda",
        "trainer.scheduler=none,linear",
        f"hydra.sweep.dir={sweep}",
        check=False,
    )
    finished = sorted(p.parent.name for p in sweep.rglob("metrics.json"))
    failed = sorted(p.parent.name for p in sweep.rglob("error.txt"))
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1].startswith(
        "rrx: error: 2 of 4 jobs finished; failed: 1_"
    )
    assert [name[:2] for name in finished] == ["0_", "2_"] and [name[:2] for name in failed] == ["1_", "3_"]
    assert "method-rrda" in finished[1] and finished[1].endswith("trainer.scheduler-none")  # readable folder names
    job = sweep / finished[1]  # a job folder passes back to evaluate as it is
    rrx(
        "evaluate",
        f"checkpoint={job}",
        "challenge=original",
        "trainer.progress=false",
        f"hydra.run.dir={tmp_path / 'e'}",
    )
    assert "trainer.scheduler=linear" in (sweep / failed[0] / "error.txt").read_text()


def test_missing_checkpoint_is_one_line(tmp_path):
    result = rrx("evaluate", f"checkpoint={tmp_path / 'nope'}", f"hydra.run.dir={tmp_path / 'e'}", check=False)
    one_line_error(result, f"checkpoint={tmp_path / 'nope'}", "does not exist")


@pytest.mark.slow
def test_wrong_dataset_layout_names_the_missing_folder(tiny, tmp_path):
    (tmp_path / "data" / "original").mkdir(parents=True)
    result = rrx("train", *tiny, f"dataset.root={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'r'}", check=False)
    one_line_error(result, "does not match the ImageNet-9 layout", str(tmp_path / "data" / "original" / "train"))


def test_unknown_config_value_lists_the_options(tmp_path):
    result = rrx("train", "method=bogus", f"hydra.run.dir={tmp_path}", check=False)
    assert result.returncode != 0
    assert "unknown method 'bogus'; known: " in result.stderr and "rrda" in result.stderr


def test_installed_package_finds_its_configs(tmp_path):
    """A non-editable install (wheel) ships the configs as package data, the launchers' too."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("rrx-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(tmp_path / "site"), str(wheel)],
        check=True,
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    result = rrx("train", "method=rrda", "--cfg", "job", cwd=tmp_path, env=env)
    assert "rrda: true" in result.stdout
    for launcher, target in (("slurm", "SlurmLauncher"), ("local_parallel", "LocalLauncher")):  # conf/hydra/launcher/
        result = rrx("train", f"hydra/launcher={launcher}", "--cfg", "hydra", cwd=tmp_path, env=env)
        assert (
            f"submitit_launcher.{target}" in result.stdout
            and "submitit_folder: ${hydra.sweep.dir}/.submitit/%j" in result.stdout
        )
    where = subprocess.run(
        [sys.executable, "-c", "import rrx.conf; print(rrx.conf.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(tmp_path / "site"))


@pytest.mark.slow
def test_bad_mask_in_a_worker_process_is_still_one_line(tiny, tmp_path):
    """A mask of the wrong size, read by a DataLoader worker (torch re-raises with a traceback)."""
    root = materialise(SyntheticSpec(image_size=32, train_per_class=8, val_per_class=4), tmp_path)
    bad = sorted((root / "fg_mask" / "train").rglob("*.npy"))[0]
    np.save(bad, np.zeros((5, 5), np.uint8))
    result = rrx(
        "train",
        *tiny,
        "method=rrda",
        f"dataset.root={root}",
        "dataset.num_workers=1",
        f"hydra.run.dir={tmp_path / 'r'}",
        check=False,
    )
    one_line_error(result, f"mask {bad} has size (5, 5)")


@pytest.mark.slow
def test_in9_train_rrda_and_evaluate_all(tmp_path):
    """Real-layout IN-9: RRDA training on masks derived from only_fg/train, then challenge=all."""
    root = write_in9(tmp_path)
    in9 = [
        "dataset=in9",
        f"dataset.root={root}",
        "dataset.num_workers=0",
        "dataset.image_size=64",
        "dataset.val_per_class=2",
    ]
    small = ["model=small_cnn", "model.width=8", "trainer.epochs=1", "trainer.batch_size=8", "trainer.progress=false"]
    run = tmp_path / "run"
    rrx("train", *small, *in9, "method=rrda", "challenge=original", f"hydra.run.dir={run}")
    assert json.loads((run / "metrics.json").read_text())["run"]["dataset"] == "in9"

    out = tmp_path / "eval"
    rrx(
        "evaluate",
        f"checkpoint={run / 'checkpoint.pt'}",
        *in9,
        "challenge=all",
        "trainer.progress=false",
        f"hydra.run.dir={out}",
    )
    results = json.loads((out / "metrics.json").read_text())["challenges"]
    assert sorted(results["accuracy"]) == sorted(VARIATIONS)
    assert sorted(results["edge"]) == ["mixed_next", "mixed_rand", "mixed_same", "original"]
    assert list(results["edge"]["original"]) == [str(w) for w in range(5, 55, 5)]
    assert {p.name for p in out.glob("*.csv")} == {"table5.csv", "table8.csv", "edge.csv"}
    assert list(pd.read_csv(out / "table8.csv").columns) == ["Architecture", "Method", "Only FG", "Only BG"]


@pytest.mark.parametrize("name", ["rival10", "decoy_mnist", "color_mnist", "toy_rules"])
def test_every_dataset_trains_and_evaluates_through_the_cli(name, tmp_path):
    data = {
        "rival10": [f"dataset.root={write_rival10(tmp_path)}", "dataset.image_size=32", "dataset.num_workers=0"],
        "decoy_mnist": [f"dataset.root={write_mnist(tmp_path)}"],
        "color_mnist": [f"dataset.root={write_mnist(tmp_path)}"],
        "toy_rules": ["dataset.train_size=40", "dataset.test_size=20", "model=mlp"],
    }[name]
    challenge = "challenge=all" if name == "rival10" else "challenge=original"
    model = [] if name == "toy_rules" else ["model=small_cnn", "model.width=8"]
    run = tmp_path / "run"
    rrx(
        "train",
        f"dataset={name}",
        *model,
        *data,
        "method=rrda",
        challenge,
        "trainer.epochs=1",
        "trainer.batch_size=8",
        "trainer.progress=false",
        f"hydra.run.dir={run}",
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["run"]["dataset"] == name and "original" in metrics["challenges"]["accuracy"]
    if name == "rival10":
        assert len(metrics["challenges"]["accuracy"]) == 8 and len(metrics["challenges"]["edge"]) == 4


@pytest.mark.slow
def test_lambda_sweep_preset_and_best_lambda(tiny, tmp_path):
    sweep = tmp_path / "sweep"
    result = rrx(
        "train", "-m", "experiment=sweep_rrr", *tiny, "challenge=mixed_rand", f"hydra.sweep.dir={sweep}", check=False
    )
    runs = [json.loads(p.read_text()) for p in sorted(sweep.rglob("metrics.json"))]
    failed = [p.read_text() for p in sweep.rglob("error.txt")]  # a large lambda may diverge at this lr
    assert result.returncode == (1 if failed else 0), result.stderr
    assert (
        len(runs) + len(failed) == 3
        and len(runs) >= 2
        and all("loss is nan" in f or "are not finite" in f for f in failed)
    )
    assert all(r["run"]["method"] == "RRR" and r["train"]["val_accuracy"] is not None for r in runs)
    rrx("report", f"runs={sweep}", f"hydra.run.dir={tmp_path / 'report'}")
    every = pd.read_csv(tmp_path / "report" / "lambda_sweep_synthetic.csv")
    best = pd.read_csv(tmp_path / "report" / "best_lambda_synthetic.csv")
    assert every["lambda"].tolist() == sorted(r["run"]["lam"] for r in runs)
    top = max(runs, key=lambda r: r["train"]["val_accuracy"])  # first maximum, as pandas' idxmax
    assert best["lambda"].tolist() == [top["run"]["lam"]]


@pytest.mark.slow
def test_grid_jobs_past_a_methods_lambda_list_are_skipped(tiny, tmp_path):
    sweep = tmp_path / "sweep"
    rrx(
        "train",
        "-m",
        "experiment=thesis_grid",
        *tiny,
        "model_settings=null",
        "challenge=background",
        "method=rrr",
        "lambda_index=0,3",
        f"hydra.sweep.dir={sweep}",
    )
    finished = [json.loads(p.read_text()) for p in sweep.rglob("metrics.json")]
    assert [m["run"]["lam"] for m in finished] == [10.0]  # RRR's Table 7 list has three lambdas
    assert not list(sweep.rglob("error.txt"))
    rrx("report", f"runs={sweep}", f"hydra.run.dir={tmp_path / 'report'}")
    text = (tmp_path / "report" / "report.md").read_text()
    assert (
        f"    rrx train -m experiment=thesis_grid {' '.join(tiny)} model_settings=null" in text
    )  # the sweep's command
    assert f"lambda_index=0,3 hydra.sweep.dir={sweep}\n" in text


def test_long_job_folder_names_are_cut_with_a_hash():
    from rrx.cli import FOLDER_NAME_MAX, folder_name

    short = "method-rrr_seed-1"
    assert folder_name(short) == short
    a, b = "x" * 300 + "_seed-0", "x" * 300 + "_seed-1"
    assert len(folder_name(a)) == FOLDER_NAME_MAX and folder_name(a) != folder_name(b)
    assert (
        folder_name("mask.checkpoint-outputs/sweep/3_p-0.05_seed-1") == "mask.checkpoint-outputs+sweep+3_p-0.05_seed-1"
    )
