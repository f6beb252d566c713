"""The segmentation task's tables and figures (thesis ch. 3: Tables 3 and 4, Figs. 8 and 10) from hand-made records."""

from __future__ import annotations

import math
import subprocess
import sys

import pandas as pd
import pytest

from rrx.record import Record
from rrx.segmentation import report
from rrx.segmentation.metrics import METRICS
from rrx.tasks import TASKS
from rrx.tasks.segmentation import FIGURES, TABLES, Segmentation

nan = math.nan


def _metrics(dsc: float, hsd: float | None = 2.0) -> dict:
    return {"mean": {"DSC": dsc, "HSD": hsd, "TPR": 90.0, "TNR": 99.0, "PPV": 80.0}, "images": 6}


def _history(epochs: list[int], dscs: list[float]) -> list[dict]:
    return [{"epoch": e, "validation": _metrics(d), "images": 24} for e, d in zip(epochs, dscs)]


def _record(method: str = "ADA", iou: bool = True, seed: int = 0) -> Record:
    """One ADA run: a standard epoch, then the plain U-Net and the Grad-CAM fork, two epochs each."""
    forks = {
        "unet": {
            "label": "U-Net",
            "attribution": None,
            "best_epoch": 3,
            "validation": _metrics(71.25),
            "robustness": _metrics(60.5, None),
            "history": _history([2, 3], [70.0, 71.25]),
            "ada_images": None,
        },
        "gradcam": {
            "label": "U-Net + ADA (Grad-CAM)",
            "attribution": "gradcam",
            "best_epoch": 2,
            "validation": _metrics(74.5),
            "robustness": _metrics(68.0),
            "history": _history([2, 3], [74.5, 73.0]),
            "ada_images": [5, 6],
        },
    }
    matrix = {"methods": ["Vanilla Gradient", "Grad-CAM"], "matrix": [[1.0, 0.25], [0.25, 1.0]]}
    section = {
        "protocol": {
            "standard_epochs": 1,
            "fork_epochs": 2,
            "ada_epochs": 1,
            "window": 8,
            "robustness_window": 16,
            "loss": "dice",
            "augment": "table2",
            "threshold": 0.5,
        },
        "hsd_unit": "pixels",
        "standard": {"history": _history([1], [50.0])},
        "forks": forks,
        "iou": matrix if iou else None,
        "first_cycle_windows": {},
    }
    run = {
        "task": "segmentation",
        "architecture": "U-Net",
        "method": method,
        "dataset": "synthetic",
        "model": "unet",
        "method_name": "ada",
        "attack": "none",
        "lam": 0.0,
        "rrda": False,
        "seed": seed,
    }
    return Record(
        "train", run, task="segmentation", sections={"segmentation": section}, train={"images": 12, "val_images": 6}
    )


def test_the_task_declares_tables_3_and_4_and_the_iou_matrix():
    tables = {t.name: t for t in TASKS.declared("TABLES")}
    assert {"table3", "table4", "iou"} <= set(tables)
    assert [(t.name, t.order) for t in TABLES] == [("table3", 3), ("table4", 4), ("iou", 10.5)]
    assert tables["table3"].title == "Validation set (Table 3 shape)"
    assert tables["table4"].title == "Robustness set, Alg. 2 (Table 4 shape)"
    assert (
        tables["iou"].title == "IoU between the windows each method erases in the first ADA cycle (Fig. 10 as numbers)"
    )
    assert all(not t.mark_best and t.in_run and t.in_report for t in TABLES)
    figures = {f.name: f for f in TASKS.declared("FIGURES")}
    assert (
        figures["fig8_dice"].caption == "Validation Dice per epoch (Fig. 8 shape)" and figures["fig8_dice"].order == 8
    )
    assert figures["fig10_iou"].caption == "IoU between the erased windows of the attribution methods (Fig. 10 shape)"
    assert figures["fig10_iou"].order == 10
    assert [f.name for f in FIGURES] == ["fig8_dice", "fig10_iou"]
    assert Segmentation.report_heading == "Segmentation, dataset" and Segmentation.report_note is report.note


def test_what_a_record_holds():
    seg, plain = _record(), _record(iou=False)
    classifier = Record(
        "train",
        {"architecture": "MLP", "method": "RRR", "dataset": "synthetic"},
        challenges={"accuracy": {"original": 0.9}},
    )
    tables = {t.name: t for t in TABLES}
    assert tables["table3"].holds(seg) and tables["table4"].holds(plain) and not tables["table3"].holds(classifier)
    assert tables["iou"].holds(seg) and not tables["iou"].holds(plain) and not tables["iou"].holds(classifier)
    figures = {f.name: f for f in FIGURES}
    assert figures["fig8_dice"].holds(plain) and not figures["fig8_dice"].holds(classifier)
    assert figures["fig10_iou"].holds(seg) and not figures["fig10_iou"].holds(plain)


def test_metric_table_has_one_row_per_fork_with_the_hand_written_values():
    record = _record()
    validation = report.metric_table([record], "validation")
    assert list(validation.columns) == ["Model", *METRICS]
    assert validation["Model"].tolist() == ["U-Net", "U-Net + ADA (Grad-CAM)"]
    assert validation["DSC"].tolist() == [71.25, 74.5]
    robust = report.metric_table([record], "robustness")
    assert robust["DSC"].tolist() == [60.5, 68.0]
    assert robust["HSD"].tolist() == pytest.approx([nan, 2.0], nan_ok=True)  # an undefined HSD is NaN
    assert robust.dtypes[list(METRICS)].eq(float).all()
    tables = {t.name: t for t in TABLES}
    pd.testing.assert_frame_equal(tables["table3"].build([record]), validation)
    pd.testing.assert_frame_equal(tables["table4"].build([record]), robust)


def test_a_config_suffix_names_the_rows_of_runs_that_differ():
    df = report.metric_table([_record("ADA [segmentation.loss=bce]")], "validation")
    assert df["Model"].tolist() == ["U-Net [segmentation.loss=bce]", "U-Net + ADA (Grad-CAM) [segmentation.loss=bce]"]


def test_iou_table_is_the_matrix_of_the_records_that_have_one():
    df = report.iou_table([_record(), _record(iou=False)])
    assert df.columns.tolist() == ["Method", "Vanilla Gradient", "Grad-CAM"]
    assert df["Method"].tolist() == ["Vanilla Gradient", "Grad-CAM"]
    assert df[["Vanilla Gradient", "Grad-CAM"]].to_numpy().tolist() == [[1.0, 0.25], [0.25, 1.0]]
    assert report.iou_table([_record(iou=False)]).empty


def test_the_note_names_the_units_and_the_robustness_window():
    assert report.note([_record()]) == (
        "DSC, TPR, TNR and PPV in percent, HSD (Hausdorff surface distance, lower is better) in pixels; each metric "
        "averaged over the images. Each row is a fork's epoch with the best validation DSC (among its epochs after the "
        "fork); the robustness set erases a 16 px square at every grid position of each validation image "
        "(thesis Alg. 2)."
    )


def test_the_tables_survive_the_record_file(tmp_path):
    record = _record()
    record.write(tmp_path)
    again = Record.read(tmp_path)
    assert again.task == "segmentation" and again.sections == record.sections
    assert report.metric_table([again], "validation")["DSC"].tolist() == [71.25, 74.5]


def test_figures_8_and_10_are_drawn(tmp_path):
    records = [_record(seed=0), _record(seed=1)]
    figures = {f.name: f for f in FIGURES}
    fig8 = figures["fig8_dice"].draw(records, "synthetic", tmp_path / "fig8_dice_synthetic.png")
    fig10 = figures["fig10_iou"].draw(records, "synthetic", tmp_path / "fig10_iou_synthetic.png")
    assert fig8.stat().st_size > 0 and fig10.stat().st_size > 0
    assert figures["fig10_iou"].draw([_record(iou=False)], "synthetic", tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_the_task_and_its_tables_load_neither_the_report_nor_matplotlib():
    code = (
        "import sys; import rrx.tasks.segmentation; "
        "print(sorted(m for m in sys.modules if m.startswith(('rrx.report', 'matplotlib'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_runs_folder_gets_its_tables_through_the_registries(tmp_path):
    from rrx.results import write_run_tables

    written = write_run_tables(_record(), tmp_path)
    assert {"table3", "table4", "iou"} <= set(written)
    assert all(
        (tmp_path / f"{name}.{ext}").is_file() for name in ("table3", "table4", "iou") for ext in ("csv", "md", "tex")
    )
    assert pd.read_csv(tmp_path / "table3.csv")["DSC"].tolist() == [71.25, 74.5]
    assert "iou" not in write_run_tables(_record(iou=False), tmp_path / "plain")
