"""The Model Inspector page (thesis 7.3): Streamlit widgets wired to ``rrx.inspector``'s library functions.

Started by ``rrx inspect`` (``rrx.inspector.server``), which opened the model and put it in ``CONTEXT``. Every error
of a library call is shown as a message in the page, which keeps working; text typed in the page is read as a path
under ``inspector.checkpoint_roots`` (``rrx.inspector.model.open_page_checkpoint``) or as numbers, never run as code.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Callable, TypeVar, cast

import streamlit as st
import torch
from PIL import Image
from streamlit_drawable_canvas import st_canvas

from rrx.analyses.u_analysis import ORDERS, U_FILLS
from rrx.attributions import attribution_names
from rrx.challenges.snr import SNRConfig
from rrx.errors import RRXError
from rrx.inspector.images import dataset_classes, dataset_image, dataset_variations, load_image, to_uint8
from rrx.inspector.masks import SHAPES, canvas_shapes, parse_shape, shape_mask
from rrx.inspector.model import NO_ROOTS, Inspected, open_page_checkpoint
from rrx.inspector.saving import save_view
from rrx.inspector.server import CONTEXT
from rrx.inspector.transforms import TEXTURES, TRANSFORMS, default_value
from rrx.inspector.views import (
    View,
    attribution_view,
    background_view,
    signal_view,
    snr_view,
    transform_view,
    u_view,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rrx.data.base import Benchmark

log = logging.getLogger("rrx.inspector")
CANVAS = 384  # side of the drawing canvas in screen pixels
DRAWING_MODES = {"rectangle": "rect", "circle": "circle", "polygon": "polygon"}
MODULES = ("Image processing", "Interpretability", "Signal")
SNR_DEFAULT = list(SNRConfig().attribution)  # the SNR challenge's default attributions (thesis Figs. 18-19)
T = TypeVar("T")


def memo(key: tuple, compute: Callable[[], T]) -> T:
    """``compute()`` once per browser session for ``key`` (the image and the view's settings)."""
    store = st.session_state.setdefault("memo", {})
    if key not in store:
        if len(store) > 32:
            store.clear()
        store[key] = compute()
    return store[key]


def show(figure: Figure) -> None:
    """A view's figure at its own size."""
    st.pyplot(figure, width="content")


def show_error(err: Exception) -> None:
    if isinstance(err, RRXError):
        st.error(str(err), icon="⚠️")
    else:  # a bug, not bad input: logged with its traceback, the page goes on
        log.exception("inspector view failed")
        st.error(f"unexpected error ({type(err).__name__}: {err}); the server log has the traceback", icon="⚠️")


def save_button(view: View, key: str, source: str) -> None:
    if st.button("Save view", key=f"save_{key}", help="PNG of the figure and JSON of the numbers, in the run folder"):
        inspected = model()
        png, data = save_view(CONTEXT["out_dir"], view, {"image": source, "model": inspected.description})
        st.success(f"saved {png.name} and {data.name} in {png.parent}")


def model() -> Inspected:
    """This session's model: the one ``rrx inspect`` opened, or a checkpoint loaded in the sidebar."""
    return st.session_state.get("inspected", CONTEXT["inspected"])


def sidebar_model() -> None:
    inspected = model()
    st.sidebar.caption(
        f"**Model**: {inspected.description}; {len(inspected.classes)} classes, {inspected.image_size} px"
    )
    with st.sidebar.expander("Load another checkpoint"):
        roots = CONTEXT["checkpoint_roots"]
        if not roots:
            st.caption(NO_ROOTS)
            return
        st.caption("from under " + ", ".join(f"`{root}`" for root in roots))
        path = st.text_input("checkpoint (run folder or .pt file)", key="checkpoint_path")
        if st.button("Load", key="load_checkpoint"):
            try:
                st.session_state["inspected"] = open_page_checkpoint(
                    CONTEXT["cfg"], path, roots, CONTEXT["dataset_choice"]
                )
                st.session_state.pop("memo", None)
                st.rerun()
            except Exception as err:  # noqa: BLE001 - any failure to load is a message; the previous model stays
                show_error(err)


def sidebar_image() -> tuple[torch.Tensor, torch.Tensor | None, str] | None:
    """(x (3, S, S), mask (S, S) or None, description) of the chosen image, or None."""
    inspected = model()
    sources = ["Upload"] + (["Dataset"] if inspected.dataset is not None else [])
    source = st.sidebar.radio("Image", sources, horizontal=True, key="source")
    if source == "Upload":
        upload = st.sidebar.file_uploader("PNG or JPEG image", type=["png", "jpg", "jpeg"], key="upload")
        if upload is None:
            return None
        data = upload.getvalue()
        x, notes = memo(
            ("upload", hashlib.sha1(data).hexdigest(), inspected.image_size),
            lambda: load_image(data, inspected.image_size, upload.name),
        )
        for note in notes:
            st.sidebar.info(note)
        return x, None, upload.name
    dataset = cast("Benchmark", inspected.dataset)  # "Dataset" is offered only when the model has one
    variation = st.sidebar.selectbox("variation", dataset_variations(dataset), key="variation")
    classes = dataset_classes(dataset, variation)
    label = st.sidebar.selectbox("class", range(len(classes)), format_func=lambda k: f"{k}: {classes[k]}", key="label")
    index = int(st.sidebar.number_input("index in the class", min_value=0, value=0, step=1, key="index"))
    x, mask, description = dataset_image(dataset, variation, label, index)
    if x.shape[-1] != inspected.image_size:
        raise RRXError(
            f"dataset images are {x.shape[-1]} px, the model takes {inspected.image_size} px; "
            "set inspector.image_size or dataset.image_size to match"
        )
    return x, mask, description


def class_picker(key: str) -> int | None:
    """None (the predicted class) or one of exactly the model's classes."""
    classes = model().classes
    options = [None, *range(len(classes))]
    return st.selectbox(
        "class to explain",
        options,
        key=key,
        format_func=lambda k: "predicted class" if k is None else f"{k}: {classes[k]}",
    )


def transform_value(name: str, side: int) -> float:
    """The slider of transform ``name`` (its value is kept per transform, and shared with the Signal module)."""
    parameter = TRANSFORMS[name].parameter
    if parameter.pixels:
        return st.slider(f"{parameter.name} (px)", 1, side, int(default_value(name, side)), 1, key=f"value_{name}")
    return st.slider(
        parameter.name,
        float(parameter.low),
        float(parameter.high),
        float(parameter.default),
        float(parameter.step),
        key=f"value_{name}",
    )


def probability_table(rows: dict[str, list[dict]]) -> None:
    """The top-k classes and probabilities of each image, as text (six decimals)."""
    table = {}
    for name, ranked in rows.items():
        table[f"{name} class"] = [f"{r['index']}: {r['class']}" for r in ranked]
        table[f"{name} probability"] = [f"{r['probability']:.6f}" for r in ranked]
    st.table(table)


def image_processing(x: torch.Tensor, digest: str, source: str) -> None:
    st.subheader("Image processing (texture and structure transforms)")
    inspected = model()
    labels = {name: f"{t.label} ({t.kind})" for name, t in TRANSFORMS.items()}
    name = st.selectbox("transform", list(TRANSFORMS), format_func=lambda n: labels[n], key="transform")
    value = transform_value(name, x.shape[-1])
    seed = int(st.number_input("seed", min_value=0, value=0, step=1, key="seed"))
    view, _ = memo(
        (digest, id(inspected), "transform", name, value, seed), lambda: transform_view(inspected, x, name, value, seed)
    )
    show(view.figure)
    probability_table({"original": view.numbers["original"], "transformed": view.numbers["transformed"]})
    save_button(view, "transform", source)


def interpretability(x: torch.Tensor, digest: str, source: str) -> None:
    st.subheader("Interpretability (attributions and U Analysis)")
    inspected = model()
    method = st.selectbox("attribution", attribution_names(), key="attribution")
    chosen = class_picker("explain_class")
    view, heat = memo(
        (digest, id(inspected), "attribution", method, chosen), lambda: attribution_view(inspected, x, method, chosen)
    )
    show(view.figure)
    save_button(view, "attribution", source)

    st.subheader("U Analysis")
    columns = st.columns(4)
    window_fraction = columns[0].slider("window fraction (of the side)", 0.05, 1.0, 0.1, 0.01, key="u_window")
    order = columns[1].selectbox("order", ORDERS, key="u_order")
    fill = columns[2].selectbox("fill", U_FILLS, key="u_noise")
    seed = int(columns[3].number_input("seed", min_value=0, value=0, step=1, key="u_seed"))
    if st.toggle("run U Analysis", key="u_run", help="predicts the image once per removed patch"):
        target = view.numbers["target"]
        u = memo(
            (digest, id(inspected), "u", method, target, window_fraction, order, fill, seed),
            lambda: u_view(inspected, x, heat, target, window_fraction, order, fill, seed),
        )
        st.write(
            f"{u.numbers['patches']} patches of {u.numbers['patch_size']} px; U-occurrences: "
            f"{len(u.numbers['triples'])}"
            + (
                f", first (left, middle, right) = {tuple(u.numbers['triples'][0])}"
                if u.numbers["triples"]
                else " (none found)"
            )
        )
        show(u.figure)
        save_button(u, "u", source)


def signal_mask(x: torch.Tensor, mask: torch.Tensor | None, digest: str) -> torch.Tensor | None:
    """The signal mask (S, S) from a drawing, typed coordinates or the dataset's object mask; None until chosen."""
    side = x.shape[-1]
    ways = ["Draw on the image", "Type coordinates"] + (["Dataset mask"] if mask is not None else [])
    way = st.radio("signal", ways, horizontal=True, key="signal_way")
    if way == "Dataset mask":
        return mask
    kind = st.selectbox("shape", SHAPES, key="shape")
    if way == "Type coordinates":
        hint = {"rectangle": "x0 y0 x1 y1", "circle": "cx cy r", "polygon": "x1 y1 x2 y2 x3 y3 ..."}[kind]
        text = st.text_input(f"{kind} in image pixels ({side} x {side}): {hint}", key=f"coordinates_{kind}")
        return shape_mask([parse_shape(kind, text)], side, side) if text.strip() else None
    st.caption(
        {
            "rectangle": "drag a rectangle",
            "circle": "drag from the edge across the circle",
            "polygon": "click the corners, then the first corner again to close",
        }[kind]
    )
    background = Image.fromarray(to_uint8(x)).resize((CANVAS, CANVAS), Image.Resampling.NEAREST)
    drawing = st_canvas(
        fill_color="rgba(255, 165, 0, 0.35)",
        stroke_width=2,
        stroke_color="#ff8c00",
        background_image=background,
        height=CANVAS,
        width=CANVAS,
        drawing_mode=DRAWING_MODES[kind],
        key=f"canvas_{digest}",
    )
    shapes = canvas_shapes(drawing.json_data, CANVAS / side)
    return shape_mask(shapes, side, side) if shapes else None


def signal(x: torch.Tensor, mask: torch.Tensor | None, digest: str, source: str) -> None:
    st.subheader("Signal (signal vs context)")
    inspected = model()
    selected = signal_mask(x, mask, digest)
    if selected is None:
        st.info("Select the signal: draw a shape, type its coordinates or take the dataset's mask.")
        return
    key = (digest, id(inspected), hashlib.sha1(selected.numpy().tobytes()).hexdigest())
    view = memo((*key, "signal"), lambda: signal_view(inspected, x, selected))
    show(view.figure)
    probability_table({name: view.numbers[name] for name in ("image", "signal", "context")})
    save_button(view, "signal", source)

    st.markdown("**Signal-to-noise ratio of the attribution**")
    methods = st.multiselect("attributions", attribution_names(), default=SNR_DEFAULT, key="snr_methods")
    chosen = class_picker("snr_class")
    snr = memo((*key, "snr", tuple(methods), chosen), lambda: snr_view(inspected, x, selected, methods, chosen))
    show(snr.figure)
    st.table(
        {
            "attribution": list(snr.numbers["snr"]),
            "SNR": [f"{v:.4f}" if v is not None else "undefined" for v in snr.numbers["snr"].values()],
        }
    )
    save_button(snr, "snr", source)

    st.markdown("**Texture transforms on the background only**")
    values = {name: st.session_state.get(f"value_{name}", default_value(name, x.shape[-1])) for name in TEXTURES}
    seed = int(st.session_state.get("seed", 0))
    st.caption(
        "parameters and seed of the Image processing module: "
        + ", ".join(f"{TRANSFORMS[n].label} {v:g}" for n, v in values.items())
        + f"; seed {seed}"
    )
    background = memo(
        (*key, "background", tuple(values.items()), seed), lambda: background_view(inspected, x, selected, values, seed)
    )
    show(background.figure)
    st.table(
        {
            "transform": [r["transform"] for r in background.numbers["rows"]],
            "top-1 class": [f"{r['top1']}: {r['class']}" for r in background.numbers["rows"]],
            "probability": [f"{r['probability']:.6f}" for r in background.numbers["rows"]],
            "p(original class)": [f"{r['original_class_probability']:.6f}" for r in background.numbers["rows"]],
        }
    )
    save_button(background, "background", source)


def main() -> None:
    st.set_page_config(page_title="rrx Model Inspector", layout="wide")
    st.sidebar.title("rrx Model Inspector")
    try:
        sidebar_model()
        if model().notice:
            st.warning(model().notice, icon="⚠️")
        module = st.sidebar.radio("Module", MODULES, key="module")
        chosen = sidebar_image()
    except Exception as err:  # noqa: BLE001 - bad input is a message; the page keeps working
        show_error(err)
        return
    if chosen is None:
        st.info(
            "Upload a PNG or JPEG image in the sidebar"
            + (", or pick one from the dataset." if model().dataset is not None else ".")
        )
        return
    x, mask, source = chosen
    digest = hashlib.sha1(x.numpy().tobytes()).hexdigest()
    try:
        if module == "Image processing":
            image_processing(x, digest, source)
        elif module == "Interpretability":
            interpretability(x, digest, source)
        else:
            signal(x, mask, digest, source)
    except Exception as err:  # noqa: BLE001
        show_error(err)


main()
