"""scripts/gpu_check.py: every part in the JSON (measured, or skipped with its reason), the deadline, and the wheels
it installs on a GPU machine without hydra, omegaconf or captum (scripts/gpu_wheels.sh)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_check.py"


def _gpu_check_module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check(tmp_path, *args, timeout=300, env=None):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((out / "gpu_check.json").read_text()), (out / "gpu_check.md").read_text(), result.stdout


def test_at_deadline_zero_every_part_is_skipped_and_the_report_written(tmp_path):
    report, md, stdout = _check(tmp_path, "--device", "cpu", "--quick", "--deadline-s", "0", "--commit", "abc123")
    parts = _gpu_check_module().PARTS
    assert list(report["parts"]) == list(parts)
    assert all(p == {"status": "skipped", "reason": "deadline", "seconds": 0.0} for p in report["parts"].values())
    assert report["machine"]["commit"] == "abc123" and report["machine"]["torch"]
    assert all(f"| {name} | skipped |" in md for name in parts)
    assert "train: skipped (deadline)" in stdout


def test_a_failing_part_is_one_line_in_the_report_and_the_next_part_runs(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    report, md, stdout = _check(
        tmp_path, "--device", "cpu", "--quick", "--parts", "decode,guard", "--cache-dir", str(not_a_folder)
    )
    decode, guard = report["parts"]["decode"], report["parts"]["guard"]
    assert decode["status"] == "failed" and "\n" not in decode["error"] and "Traceback" in decode["traceback"]
    assert guard["status"] == "ok" and guard["result"]["step_ms"] > 0
    assert "| decode | failed |" in md and "decode: failed in" in stdout


def test_installing_wheels_leaves_this_python_able_to_import_setuptools(tmp_path, monkeypatch):
    """``importlib.util.find_spec("pip")`` in this process switched setuptools' distutils hook off for good (its
    ``spec_for_pip``), after which torch.compile's C++ builder could not import setuptools: the CI failure of
    2026-12-02, in a test_train run after this file's. Whether there is a pip is asked of a child Python."""
    hook = pytest.importorskip("_distutils_hack")
    calls = []
    monkeypatch.setattr(
        subprocess, "run", lambda args, **kw: calls.append(list(args)) or subprocess.CompletedProcess(args, 0)
    )
    (tmp_path / "wheels").mkdir()
    _gpu_check_module().install_wheels(tmp_path / "wheels", tmp_path / "site", ["PyYAML"])
    assert "spec_for_distutils" not in vars(hook.DISTUTILS_FINDER)  # the hook still hands out setuptools' distutils
    assert [c[1:4] for c in calls] == [["-m", "pip", "--version"], ["-m", "pip", "install"]]


@pytest.mark.slow
def test_quick_cpu_run_measures_every_part_or_says_why_not(tmp_path):
    report, md, stdout = _check(tmp_path, "--device", "cpu", "--quick", "--deadline-s", "600")
    parts = report["parts"]
    assert {name: p["status"] for name, p in parts.items()} == {
        "train": "ok",
        "evaluate": "ok",
        "decode": "ok",
        "guard": "ok",
        "ddp": "skipped",
        "analyze": "ok",
        "train_preloaded": "ok",
        "train_compile": "skipped",
    }, {n: p.get("error") for n, p in parts.items()}
    assert "2 GPUs" in parts["ddp"]["reason"] and "CUDA only" in parts["train_compile"]["reason"]
    train = parts["train"]["result"]
    assert len(train["rows"]) == train["cases"] == 18  # two models x the thesis grid's nine cases
    assert train["projection"]["rows"] and not train["projection"]["thesis_grid"]
    assert {r["analysis"] for r in parts["analyze"]["result"]["rows"]} == {
        "localisation",
        "obey",
        "focus",
        "u_analysis",
        "ipha",
    }
    assert [r["model"] for r in parts["evaluate"]["result"]["rows"]] == ["resnet50", "clip_b32"]
    assert all(r["composites_per_s"] > 0 and r["full_in9_h"] > 0 for r in parts["evaluate"]["result"]["rows"])
    assert parts["decode"]["result"]["nvjpeg"]["status"] == "skipped"
    assert parts["guard"]["result"]["guard_share"] > 0
    assert all(p["seconds"] >= 0 for p in parts.values()) and report["machine"]["wall_s"] > 0
    for heading in ("## train:", "## train_preloaded:", "## evaluate", "## analyze", "## decode", "## guard"):
        assert heading in md
    assert "| SmallCNN | Standard |" in md


def _pypi_reachable() -> bool:
    try:
        urllib.request.urlopen("https://pypi.org/simple/hydra-core/", timeout=10)
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_the_wheels_install_into_a_target_and_rrx_composes_from_it(tmp_path):
    if not _pypi_reachable():
        pytest.skip("PyPI is not reachable: scripts/gpu_wheels.sh downloads the wheels from it")
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"  # this Python's wheels, so they install here
    made = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu_wheels.sh"), str(wheels)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable, "GPU_PYTHON_VERSION": version},
        timeout=600,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert "MiB (limit 64 MiB)" in made.stdout and (wheels / "COMMIT").read_text().strip()
    names = sorted(p.name.split("-")[0].lower() for p in wheels.glob("*.whl"))
    assert names == ["antlr4_python3_runtime", "captum", "hydra_core", "omegaconf", "pyyaml"]

    gpu_check = _gpu_check_module()
    gpu_check.install_wheels(wheels, target, list(gpu_check.NEEDED.values()))
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import antlr4, captum, hydra, omegaconf, torch, yaml\n"
        "from pathlib import Path\n"
        "assert all(Path(m.__file__).is_relative_to(sys.argv[1]) for m in (antlr4, captum, hydra, omegaconf, yaml))\n"
        "from hydra import compose, initialize_config_module\n"
        "with initialize_config_module('rrx.conf', version_base='1.3'):\n"
        "    cfg = compose('train', overrides=['model=small_cnn'])\n"
        "from captum.attr import Saliency\n"
        "net = torch.nn.Linear(4, 2)\n"
        "print(cfg.model.name, tuple(Saliency(net).attribute(torch.ones(1, 4), target=0).shape))\n"
    )
    unpacked = tmp_path / "unpacked"  # a Python without pip
    gpu_check.unpack_wheels(wheels, unpacked, list(gpu_check.NEEDED.values()))
    for site in (target, unpacked):
        done = subprocess.run(
            [sys.executable, "-c", probe, str(site)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["small_cnn", "(1,", "4)"]

    # a machine without them (hidden from this Python's site-packages): gpu_check installs all five and runs
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(HIDE)
    report, _, stdout = _check(
        tmp_path,
        "--device",
        "cpu",
        "--quick",
        "--parts",
        "guard,analyze",
        "--wheels",
        str(wheels),
        "--target",
        str(tmp_path / "gpu-site"),
        env={**os.environ, "PYTHONPATH": str(hide)},
    )
    assert report["machine"]["installed_from_wheels"] == list(gpu_check.NEEDED.values()), stdout
    assert {p["status"] for p in report["parts"].values()} == {"ok"}, report["parts"]


# sitecustomize for a Python that lacks hydra, omegaconf, antlr4, captum and PyYAML: they are found only outside
# site-packages folders (where gpu_check's --target puts them)
HIDE = """
import importlib.machinery, sys
HIDDEN = {"hydra", "omegaconf", "antlr4", "captum", "yaml"}
class Hide:
    def find_spec(self, name, path=None, target=None):
        if path is None and name.partition(".")[0] in HIDDEN:
            spec = importlib.machinery.PathFinder.find_spec(name, [p for p in sys.path if "site-packages" not in p])
            if spec is None:
                raise ModuleNotFoundError(f"No module named {name!r} (hidden)", name=name)
            return spec
        return None
sys.meta_path.insert(0, Hide())
"""
