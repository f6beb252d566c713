"""Faults of the "minor" list of issue 24: a full disk, a log file that cannot be written, a read-only or
un-creatable run folder, refused commands that leave logs and folders behind, Ctrl-C outside training.

Each test fails on rrx before that change. Writes fail for real where a test can make the kernel refuse them
(``RLIMIT_FSIZE``, ``/dev/full``, a file in a folder's path, a read-only tmpfs in a private mount namespace);
the checkpoint that fills the disk is simulated in-process, with torch's own error message.
"""

import errno
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import TINY
from fixtures.runner import REPO, RRX, one_line_error, rrx
from hydra import compose, initialize_config_module

from rrx.errors import RRXError
from rrx.train import train


@pytest.fixture
def tiny(cache_dir):
    return [*TINY, f"dataset.cache_dir={cache_dir}"]


@pytest.fixture(scope="module")
def trained(cache_dir, tmp_path_factory):
    """A finished tiny training run folder."""
    run = tmp_path_factory.mktemp("faults") / "run"
    with initialize_config_module("rrx.conf", version_base="1.3"):
        train(compose("train", overrides=[*TINY, f"dataset.cache_dir={cache_dir}"]), run)
    return run


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    """``code`` run as a script with ``args``, from the repository, its output captured."""
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, timeout=300)


# 1. A full disk --------------------------------------------------------------------------------------------

NO_WRITES = textwrap.dedent("""
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # the kernel refuses every byte written to a file
    from rrx.cli import main
    sys.argv = ["rrx", *sys.argv[1:]]
    main()
""")


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_a_disk_that_takes_no_byte_is_one_error_line_naming_the_file(command, tiny, trained, tmp_path):
    """As on a full disk, every write fails; rrx said so with an OSError traceback from writing .rrx.lock and
    logging's "--- Logging error ---" block for every record."""
    folder = tmp_path / "out"
    cache = [o for o in tiny if o.startswith("dataset.cache_dir=")]  # the benchmark is there: nothing to generate
    args = tiny if command == "train" else [f"checkpoint={trained}", *cache]
    result = _python(NO_WRITES, command, *args, f"hydra.run.dir={folder}")
    one_line_error(result, f"cannot write {folder / '.rrx.lock'}: File too large")
    assert "Logging error" not in result.stderr
    assert result.stderr.count("rrx: warning:") <= 1  # the log file, once, where something was logged
    assert not (folder / f"{command}.log").exists()  # created empty before the lock failed, and removed


def test_a_log_file_that_cannot_be_written_is_one_warning_and_appears_only_with_a_record(tmp_path, capsys):
    from rrx.outputs import QuietFileHandler

    lazy = QuietFileHandler(str(tmp_path / "train.log"))
    assert not (tmp_path / "train.log").exists()  # nothing logged yet: no empty log file
    lazy.close()
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    logger = logging.getLogger("test_faults.full")
    logger.propagate = False
    full = QuietFileHandler("/dev/full")  # every write fails: ENOSPC
    logger.addHandler(full)
    try:
        for epoch in range(3):
            logger.warning("epoch %d", epoch)
    finally:
        logger.removeHandler(full)
        full.close()
    err = capsys.readouterr().err
    assert err == "rrx: warning: cannot write /dev/full: No space left on device; logging to the console only\n"


TORCH_FULL_DISK = (
    "[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file data/0: file write failed"
)


def test_a_checkpoint_write_that_fills_the_disk_is_named_and_status_json_is_left_as_it_was(
    compose_train, tmp_path, monkeypatch, caplog
):
    """torch.save reports a full disk as a RuntimeError; the status.json write after it fails too and used to
    replace the reason (the error named status.json) and leave an unexplained ``running``."""
    save, real_write_text, real_statvfs = torch.save, Path.write_text, os.statvfs
    state = {"saves": 0, "full": False}

    def fills_the_disk_on_second_save(obj, f, *args, **kwargs):
        state["saves"] += 1
        if state["saves"] == 2:
            Path(f).write_bytes(b"PK\x03\x04 cut short")
            state["full"] = True
            raise RuntimeError(TORCH_FULL_DISK)
        return save(obj, f, *args, **kwargs)

    def write_text(path, *args, **kwargs):
        if state["full"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write_text(path, *args, **kwargs)

    def statvfs(path):  # a full disk has no block available
        real = real_statvfs(path)
        return os.statvfs_result((*real[:4], 0, *real[5:])) if state["full"] else real

    monkeypatch.setattr(torch, "save", fills_the_disk_on_second_save)
    monkeypatch.setattr(Path, "write_text", write_text)
    monkeypatch.setattr(os, "statvfs", statvfs)
    with pytest.raises(RRXError, match=r"cannot write .*checkpoint\.pt: No space left on device"):
        train(compose_train("trainer.epochs=2"), tmp_path)
    status = json.loads((tmp_path / "status.json").read_bytes())
    assert (status["state"], status["epoch"]) == ("running", 1)  # what it said before the disk filled
    assert "status.json not updated: cannot write" in caplog.text
    assert not list(tmp_path.glob(".checkpoint.pt*"))


# 2./3. A run folder that cannot be created or written --------------------------------------------------------


def test_a_run_folder_that_cannot_be_created_is_one_line_naming_it(tiny, tmp_path):
    (tmp_path / "file").write_text("x")
    folder = tmp_path / "file" / "run"  # a file in its path: ENOTDIR, as a read-only or full disk gives EROFS, ENOSPC
    one_line_error(
        rrx("train", *tiny, f"hydra.run.dir={folder}", check=False),
        f"cannot use {folder} as a run folder",
        "Not a directory",
    )


@pytest.fixture
def read_only_mount(tmp_path):
    """``run(folder, *args)``: ``rrx *args`` with ``folder`` a read-only tmpfs, in a private mount namespace."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mount = ["unshare", "--mount", "sh", "-c", 'mount -t tmpfs -o ro tmpfs "$0" && exec "$@"', str(folder)]
    if shutil.which("unshare") is None or subprocess.run([*mount, "true"], capture_output=True).returncode != 0:
        pytest.skip("no private mount namespace (needs unshare and CAP_SYS_ADMIN)")

    def run(*args):
        return subprocess.run([*mount, *RRX, *args], cwd=REPO, capture_output=True, text=True, timeout=300)

    return folder, run


@pytest.mark.parametrize("below", ["", "run"])
def test_a_read_only_run_folder_is_one_line_naming_it(tiny, read_only_mount, below):
    folder, run = read_only_mount
    folder = folder / below if below else folder
    result = run("train", *tiny, f"hydra.run.dir={folder}")
    one_line_error(result, f"cannot use {folder} as a run folder: Read-only file system")


# 4. Refused commands leave no trace --------------------------------------------------------------------------


@pytest.mark.slow
def test_a_refused_config_leaves_no_folder_it_created_and_keeps_one_that_existed(tiny, tmp_path):
    new, empty = tmp_path / "new" / "run", tmp_path / "empty"
    empty.mkdir()
    for folder in (new, empty):
        result = rrx("train", *tiny, "method=rrr", "method.lam=-1.0", f"hydra.run.dir={folder}", check=False)
        one_line_error(result, "method.lam=-1: must be >= 0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"] and not list(empty.iterdir())


def test_a_refused_config_leaves_no_default_run_folder(tiny, tmp_path):
    result = rrx("train", *tiny, "method=rrr", "method.lam=-1.0", cwd=tmp_path, check=False)
    one_line_error(result, "method.lam=-1: must be >= 0")
    assert list(tmp_path.glob("outputs/*/*")) == []  # outputs/<date>/ may stay: other runs of the day share it


def test_a_report_of_runs_that_do_not_exist_leaves_nothing_behind(tmp_path):
    """It claimed its folder and wrote .hydra/ (and an empty report.log) before it looked for the runs."""
    result = rrx("report", f"runs={tmp_path / 'no-such-sweep'}", f"hydra.run.dir={tmp_path / 'report'}", check=False)
    one_line_error(result, f"runs={tmp_path / 'no-such-sweep'}: no such folder or file")
    assert not (tmp_path / "report").exists()


def test_a_command_that_fails_after_it_started_says_why_in_its_log(tiny, tmp_path):
    """Its log ended with the last INFO line: the reason was on the console only."""
    (tmp_path / "w.pth").write_text("not weights")
    data = [o for o in tiny if o.startswith("dataset.")]
    result = rrx(
        "evaluate",
        "model=torchvision",
        "model.arch=resnet18",
        f"model.weights_path={tmp_path / 'w.pth'}",
        "challenge=original",
        *data,
        f"hydra.run.dir={tmp_path / 'e'}",
        check=False,
    )
    line = one_line_error(result, "model.weights_path=", "cannot load")
    assert (tmp_path / "e" / "evaluate.log").read_text().strip().splitlines()[-1].endswith(line)


def test_analyze_refused_in_a_training_folder_leaves_no_log_there(trained):
    before = sorted(p.name for p in trained.iterdir())
    result = rrx("analyze", f"checkpoint={trained}", f"hydra.run.dir={trained}", check=False)
    one_line_error(result, "already holds results", "rrx analyze never writes over them")
    assert sorted(p.name for p in trained.iterdir()) == before  # no analyze.log


# 5. Ctrl-C outside training ----------------------------------------------------------------------------------

CTRL_C_AT_BUILD = textwrap.dedent("""
    import os, signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as under a terminal: pytest may run as a background job
    import rrx.subject  # patched before rrx evaluate and rrx analyze import it
    opened = rrx.subject.open_subject

    def open_subject(*args, **kwargs):  # SIGINT to this process as the model is built: the command is at work
        subject = opened(*args, **kwargs)
        build = subject.build

        def interrupted():
            os.kill(os.getpid(), signal.SIGINT)
            return build()

        subject.build = interrupted
        return subject

    rrx.subject.open_subject = open_subject
    from rrx.cli import main
    sys.argv = ["rrx", *sys.argv[1:]]
    main()
""")


@pytest.mark.parametrize("command", ["evaluate", "analyze"])
def test_ctrl_c_during_evaluate_or_analyze_is_one_line(command, trained, cache_dir, tmp_path):
    result = _python(
        CTRL_C_AT_BUILD,
        command,
        f"checkpoint={trained}",
        f"dataset.cache_dir={cache_dir}",
        f"hydra.run.dir={tmp_path / 'out'}",
    )
    one_line_error(result, "stopped by SIGINT")
    assert "KeyboardInterrupt" not in result.stderr
