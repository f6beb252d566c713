"""``rrx inspect``: open the model, then serve the Model Inspector (``rrx/inspector/app.py``) with Streamlit.

The model is opened before the server starts, so a bad checkpoint or model on the command line is one
``rrx: error:`` line. The command's run folder (``outputs/<date>/<time>-<random>_inspect/``) is locked while the
server runs and receives the views saved from the page. The page loads other checkpoints only from under
``inspector.checkpoint_roots`` (``rrx.inspector.model.checkpoint_roots``). The server binds ``inspector.host``
(127.0.0.1 unless another interface is given) and runs in this process until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import socket
from pathlib import Path

from omegaconf import DictConfig

from rrx.config import check
from rrx.errors import RRXError
from rrx.inspector.model import checkpoint_roots, open_inspected
from rrx.outputs import claim_new_folder, record_hydra_config

log = logging.getLogger(__name__)
APP = Path(__file__).resolve().parent / "app.py"
# What the page reads: the command's config, run folder, dataset choice, opened model and the folders it may load
# checkpoints from (one server process, many sessions).
CONTEXT: dict = {}


def check_port(host: str, port: int) -> None:
    """RRXError unless ``host``:``port`` can be bound now (it names the fix: another port or host)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as err:
            raise RRXError(
                f"inspector.host={host} inspector.port={port}: cannot listen there ({err.strerror}); "
                "give another inspector.port (or inspector.host)"
            ) from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def streamlit_options(cfg: DictConfig) -> dict:
    """Streamlit's settings for the Inspector: the interface and port, no browser opened, no usage statistics,
    no file watching (the app's code does not change while it runs)."""
    return {
        "server.address": cfg.inspector.host,
        "server.port": int(cfg.inspector.port),
        "server.headless": True,
        "server.fileWatcherType": "none",
        "server.runOnSave": False,
        "server.maxUploadSize": int(cfg.inspector.max_upload_mb),
        "browser.gatherUsageStats": False,
        "browser.serverAddress": cfg.inspector.host,
        "global.developmentMode": False,
        "client.toolbarMode": "minimal",
        "client.showErrorDetails": "none",
    }


def inspect(cfg: DictConfig, out_dir: Path, dataset_choice) -> None:
    """Open the model of ``cfg`` and serve the Inspector on ``cfg.inspector.host``:``port``; views are saved to
    ``out_dir`` (a new folder). ``dataset_choice``: what the command line said of the dataset
    (``rrx.subject.DatasetChoice``, or a bool)."""
    missing = [name for name in ("streamlit", "streamlit_drawable_canvas") if importlib.util.find_spec(name) is None]
    if missing:
        raise RRXError(f"rrx inspect needs {' and '.join(missing)}: pip install 'rrx[inspector]'")
    from streamlit import config as streamlit_config
    from streamlit.web import bootstrap

    check(cfg)
    host, port = str(cfg.inspector.host), int(cfg.inspector.port)
    check_port(host, port)
    roots = checkpoint_roots(cfg)
    inspected = open_inspected(cfg, dataset_choice)
    with claim_new_folder(out_dir, "inspect"):
        record_hydra_config(out_dir, cfg)
        CONTEXT.update(
            cfg=cfg, out_dir=Path(out_dir), dataset_choice=dataset_choice, inspected=inspected, checkpoint_roots=roots
        )
        loads = f"load checkpoints from under {', '.join(map(str, roots))}" if roots else "load no other checkpoints"
        if not is_loopback(host):
            log.warning(
                "inspector.host=%s: the Inspector is reachable from other machines; anyone who reaches it can "
                "run the model on uploaded images, save views into %s and %s",
                host,
                out_dir,
                loads,
            )
        log.info(
            "Model Inspector of %s at http://%s:%d (Ctrl-C stops it); saved views go to %s; the page can %s",
            inspected.description,
            host,
            port,
            out_dir,
            loads,
        )
        options = streamlit_options(cfg)
        streamlit_config._main_script_path = str(APP)
        bootstrap.load_config_options(flag_options=options)
        bootstrap.run(str(APP), False, [], options)
