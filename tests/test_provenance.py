"""The provenance block of metrics.json: git state, file hashes, library versions, weights; and what the report
says where runs differ."""

import hashlib
import subprocess
import sys

import timm
import torch

from rrx.provenance import collect, file_sha256, git_state, library_versions, weights
from rrx.record import Record
from rrx.report.provenance import mixed_versions, provenance_lines


def git(folder, *args):
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_git_state_names_the_commit_and_a_changed_tracked_file(tmp_path):
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "__init__.py").write_text("x = 1\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "one")
    head = git(repo, "rev-parse", "HEAD")
    assert git_state(repo / "pkg") == {"commit": head, "dirty": False}
    (repo / "pkg" / "untracked.txt").write_text("new")  # an untracked file changes no code that ran
    assert git_state(repo / "pkg")["dirty"] is False
    (repo / "pkg" / "__init__.py").write_text("x = 2\n")
    assert git_state(repo / "pkg") == {"commit": head, "dirty": True}
    # a folder of the work tree that does not track the package (a virtual environment inside a checkout)
    (repo / "venv").mkdir()
    assert git_state(repo / "venv") == {"commit": None, "dirty": None}
    assert git_state(tmp_path) == {"commit": None, "dirty": None}  # outside any work tree


def test_file_sha256_of_a_file_and_of_a_folder(tmp_path):
    data = bytes(range(256)) * 5000  # over one read block
    (tmp_path / "w.pt").write_bytes(data)
    assert file_sha256(tmp_path / "w.pt") == hashlib.sha256(data).hexdigest()
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "b.bin").write_bytes(b"bb")
    (tmp_path / "hf" / "a.json").write_bytes(b"a")
    assert file_sha256(tmp_path / "hf") == hashlib.sha256(b"a.json" + b"a" + b"b.bin" + b"bb").hexdigest()


def test_library_versions_name_python_and_torchs_build():
    versions = library_versions()
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert versions["torch"] == torch.__version__ and versions["timm"] == timm.__version__
    assert "not_a_library" not in versions and set(versions) >= {"captum", "transformers", "hydra-core"}


def test_weights_say_what_the_model_started_from(tmp_path):
    file = tmp_path / "ckpt.pt"
    file.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    assert weights(None, None, str(file)) == {"checkpoint": str(file), "sha256": digest}
    assert weights({"name": "timm", "weights_path": str(file)}) == {"file": str(file.resolve()), "sha256": digest}
    assert weights({"name": "small_cnn"}) == {"pretrained": False}
    vit = timm.create_model("test_vit", pretrained=False)
    found = weights({"name": "timm", "arch": "test_vit", "pretrained": True}, torch.nn.Sequential(vit))
    assert found["timm"] == "test_vit.r160_in1k" and found["hf_hub_id"] == "timm/test_vit.r160_in1k"
    assert weights({"name": "torchvision", "arch": "resnet18", "pretrained": True})["torchvision"] == (
        "ResNet18_Weights.IMAGENET1K_V1"
    )


def test_collect_names_the_command_line_and_utc_times(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["rrx train", "method=rrr", "hydra.run.dir=a b"])
    block = collect(0.0, "cpu", {"pretrained": False}, finished=90.0)
    assert block["command"] == "rrx train method=rrr 'hydra.run.dir=a b'"
    assert block["started"] == "1970-01-01T00:00:00+00:00" and block["finished"] == "1970-01-01T00:01:30+00:00"
    assert block["device"].startswith("cpu (") and block["weights"] == {"pretrained": False}
    assert block["rrx"]["version"]


def _record(seed, torch_version, commit="a" * 40, method="Standard"):
    run = {"architecture": "SmallCNN", "method": method, "dataset": "synthetic", "seed": seed}
    provenance = {
        "rrx": {"version": "0.1.0", "commit": commit, "dirty": False},
        "versions": {"python": "3.11.2", "torch": torch_version},
        "device": "cpu (EPYC)",
    }
    return Record("train", run, provenance=provenance)


def test_report_warns_when_seeds_averaged_together_ran_on_different_torch():
    same = [_record(0, "2.4.0"), _record(1, "2.4.0")]
    assert mixed_versions(same) == []
    text = "\n".join(provenance_lines(same))
    assert "All 2 results: rrx 0.1.0, rrx commit aaaaaaa, python 3.11.2, torch 2.4.0, device cpu (EPYC)." in text
    mixed = [_record(0, "2.4.0"), _record(1, "2.5.1"), _record(0, "2.5.1", method="RRR")]
    (warning,) = mixed_versions(mixed)  # RRR has one run: nothing averaged
    assert warning == (
        "the 2 results of SmallCNN Standard on synthetic shown in one row came from different code "
        "(torch: 2.4.0, 2.5.1)"
    )
    text = "\n".join(provenance_lines([*mixed, Record("train", {"dataset": "synthetic", "seed": 0})]))
    assert "1 of 4 results have no provenance" in text and "| torch | 2.4.0 (1); 2.5.1 (2) |" in text
    assert f"> **Warning:** {warning}" in text


def test_an_evaluation_added_to_its_run_is_compared_with_it():
    run, evaluation = _record(0, "2.4.0"), _record(0, "2.4.0", commit="b" * 40)
    run.merged.append(evaluation)
    assert mixed_versions([run]) == [
        "the 2 results of SmallCNN Standard on synthetic shown in one row came from different code "
        "(rrx commit: aaaaaaa, bbbbbbb)"
    ]
