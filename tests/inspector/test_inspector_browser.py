"""The Model Inspector end to end: ``rrx inspect`` on a tiny trained model, driven in headless Chromium.

Each test opens a fresh browser session, uploads an image and checks the numbers the page shows against the
library functions (``rrx.inspector``) on the same model and image. Screenshots go to the test's tmp folder; one per
module is also copied to ``$RRX_INSPECTOR_SCREENSHOTS`` when set (docs/inspector/ holds the README's:
``RRX_INSPECTOR_SCREENSHOTS=docs/inspector pytest tests/inspector/test_inspector_browser.py``).
"""

import json
import os
import shutil

import pytest
import torch
from conftest import TINY, Marker
from fixtures.browser import Server, chrome, click, read_table, require_browser, wait_for
from fixtures.runner import rrx
from hydra import compose, initialize_config_module
from PIL import Image

from rrx.inspector.images import dataset_image, load_image
from rrx.inspector.model import open_inspected
from rrx.inspector.views import signal_view, transform_view

pytestmark = pytest.mark.browser  # in `make test-all` (CI), not in `make test`


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """(server, the model and image the page sees, the image file, the run folder receiving saved views, the
    trained run: the folder the page may load checkpoints from)."""
    chromium, driver = require_browser()
    folder = tmp_path_factory.mktemp("inspect")
    rrx(
        "train",
        *TINY,
        f"dataset.cache_dir={folder / 'cache'}",
        "challenge=original",
        f"hydra.run.dir={folder / 'train'}",
    )
    # a test image of the benchmark (an object on a background), enlarged and uploaded as a PNG photo
    [original] = list((folder / "cache").glob("synthetic-*/bg_challenge/original/val/02_triangle"))
    image = folder / "photo.png"
    Image.open(sorted(original.iterdir())[0]).resize((48, 40)).save(image)
    out = folder / "inspect"
    command = [f"checkpoint={folder / 'train'}", f"dataset.cache_dir={folder / 'cache'}"]
    server = Server([*command, f"hydra.run.dir={out}"], folder / "server.log")
    with initialize_config_module("rrx.conf", version_base="1.3"):
        cfg = compose("inspect", overrides=command)
    inspected = open_inspected(cfg, False)
    x, _ = load_image(image.read_bytes(), inspected.image_size)
    browser = chrome(chromium, driver)
    yield {
        "url": server.url,
        "inspected": inspected,
        "x": x,
        "image": image,
        "out": out,
        "browser": browser,
        "run": folder / "train",
    }
    browser.quit()
    assert server.stop() == 0, (folder / "server.log").read_text()


# the drawing component renders in a shadow root; Fabric.js takes the mouse on its upper canvas
FIND_CANVAS = """for (const e of document.querySelectorAll('*')) {
  const c = e.shadowRoot && e.shadowRoot.querySelector('canvas.upper-canvas'); if (c) return c; } return null;"""


# how many figures the page shows, each loaded
IMAGES_SHOWN = """const shown = [...document.querySelectorAll('[data-testid=stImage] img')];
return shown.length == arguments[0] && shown.every(i => i.complete && i.naturalWidth > 0);"""


def screenshot(browser, tmp_path, name, module=False):
    """Save the page as ``<name>.png`` in the test's tmp folder; a module's also in $RRX_INSPECTOR_SCREENSHOTS."""
    path = tmp_path / f"{name}.png"
    browser.save_screenshot(str(path))
    if module and os.environ.get("RRX_INSPECTOR_SCREENSHOTS"):
        shutil.copy(path, os.path.join(os.environ["RRX_INSPECTOR_SCREENSHOTS"], path.name))
    return path


def by_css(browser, css):
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, css)


def open_with_image(app, image=None):
    browser = app["browser"]
    browser.get(app["url"])
    wait_for(lambda: by_css(browser, "input[type=file]"), what="the upload field")[0].send_keys(
        str(image or app["image"])
    )


def table_with(browser, header: str) -> list[dict]:
    for element in by_css(browser, "[data-testid=stTable]"):
        rows = read_table(element)
        if rows and header in rows[0]:
            return rows
    return []


def choose(browser, label: str) -> None:
    """Click the sidebar's radio option ``label``."""
    click(
        lambda: [
            o for o in by_css(browser, "[data-testid=stSidebar] [role=radiogroup] label") if o.text.strip() == label
        ][0],
        what=f"the sidebar's {label}",
    )


def open_module(app, label: str) -> None:
    """The page with the test image uploaded, once its first module has answered, switched to module ``label``."""
    open_with_image(app)
    wait_for(lambda: table_with(app["browser"], "transformed probability"), what="the first module")
    choose(app["browser"], label)


def shown(rows, column: str) -> dict[str, str]:
    return {row[f"{column} class"]: row[f"{column} probability"] for row in rows}


def expected(numbers: list[dict]) -> dict[str, str]:
    return {f"{r['index']}: {r['class']}": f"{r['probability']:.6f}" for r in numbers}


def test_noise_slider_changes_the_probabilities_shown(app, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    browser = app["browser"]
    open_with_image(app)
    before = wait_for(lambda: table_with(browser, "transformed probability"), what="the probability table")
    view, _ = transform_view(app["inspected"], app["x"], "gaussian_noise", 0.1, 0)
    assert shown(before, "original") == expected(view.numbers["original"])
    assert shown(before, "transformed") == expected(view.numbers["transformed"])

    slider = by_css(browser, "[data-testid=stSlider] input[type=range]")[0]
    browser.execute_script("arguments[0].focus();", slider)
    ActionChains(browser).send_keys(Keys.ARROW_RIGHT * 40).perform()  # sigma 0.10 -> 0.50
    wait_for(lambda: by_css(browser, "[data-testid=stSliderThumbValue]")[0].text == "0.50", what="the slider at 0.50")
    view, _ = transform_view(app["inspected"], app["x"], "gaussian_noise", 0.5, 0)
    assert shown(before, "transformed") != expected(view.numbers["transformed"])
    # the page reruns once per key press: wait for the last rerun's table
    after = wait_for(
        lambda: (
            (rows := table_with(browser, "transformed probability"))
            and shown(rows, "transformed") == expected(view.numbers["transformed"])
            and rows
        ),
        what="the probabilities of sigma 0.5",
    )
    assert shown(after, "original") == expected(view.numbers["original"])
    wait_for(lambda: browser.execute_script(IMAGES_SHOWN, 1), what="the figure")
    screenshot(browser, tmp_path, "image_processing", module=True)

    click(
        lambda: [b for b in by_css(browser, "[data-testid=stButton] button") if b.text == "Save view"][0],
        what="the Save view button",
    )
    wait_for(lambda: "saved transform-" in browser.find_element("tag name", "body").text, what="the save message")
    [saved] = [json.loads(p.read_text()) for p in app["out"].glob("transform-*.json")]
    assert saved["value"] == pytest.approx(0.5) and saved["image"] == "photo.png"
    assert [r["index"] for r in saved["transformed"]] == [r["index"] for r in view.numbers["transformed"]]
    assert [r["probability"] for r in saved["transformed"]] == pytest.approx(
        [r["probability"] for r in view.numbers["transformed"]], abs=1e-12
    )


@pytest.mark.slow
def test_interpretability_module_with_u_analysis(app, tmp_path):
    browser = app["browser"]
    open_module(app, "Interpretability")
    wait_for(lambda: "U Analysis" in browser.find_element("tag name", "body").text, what="the interpretability module")
    click(
        lambda: [t for t in by_css(browser, "[data-testid=stCheckbox] label") if "run U Analysis" in t.text][0],
        what="the U Analysis switch",
    )
    text = wait_for(
        lambda: (body := browser.find_element("tag name", "body").text) and "U-occurrences" in body and body,
        what="the U Analysis",
    )
    assert "patches of 3 px" in text  # window 0.1 of 32 px
    wait_for(lambda: browser.execute_script(IMAGES_SHOWN, 2), what="the U Analysis figure")
    screenshot(browser, tmp_path, "interpretability", module=True)


@pytest.mark.slow
def test_signal_drawn_on_the_canvas(app, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains

    browser = app["browser"]
    open_module(app, "Signal")
    canvas = wait_for(lambda: browser.execute_script(FIND_CANVAS), what="the drawing canvas")
    assert canvas.size == {"width": 384, "height": 384}
    # drag from (100, 100) to (250, 300) of the 384 px canvas (12 canvas px per image px); the drawn rectangle's
    # fill starts inside its 2 px stroke: (101, 101)-(251, 301), image (8.4, 8.4)-(20.9, 25.1): rows 8..24, cols 8..20
    ActionChains(browser).move_to_element_with_offset(canvas, 100 - 192, 100 - 192).click_and_hold().move_by_offset(
        75, 100
    ).move_by_offset(75, 100).release().perform()
    rows = wait_for(lambda: table_with(browser, "signal probability"), what="the signal predictions")
    mask = torch.zeros(32, 32)
    mask[8:25, 8:21] = 1
    view = signal_view(app["inspected"], app["x"], mask)
    for column in ("image", "signal", "context"):
        assert shown(rows, column) == expected(view.numbers[column])
    wait_for(lambda: table_with(browser, "p(original class)"), what="the background transforms")
    screenshot(browser, tmp_path, "signal_drawn")


@pytest.mark.slow
def test_dataset_image_with_its_mask(app, tmp_path):
    from selenium.webdriver.common.keys import Keys

    browser = app["browser"]
    browser.get(app["url"])
    choose(browser, "Dataset")
    [variation] = wait_for(lambda: [s for s in by_css(browser, "[data-testid=stSelectbox]") if "variation" in s.text])
    variation.find_element("css selector", "input").send_keys("mixed_rand" + Keys.ENTER)
    [label] = wait_for(lambda: [s for s in by_css(browser, "[data-testid=stSelectbox]") if "class" in s.text])
    label.find_element("css selector", "input").send_keys("2: 02_triangle" + Keys.ENTER)
    wait_for(lambda: table_with(browser, "transformed probability"), what="the dataset image's predictions")
    choose(browser, "Signal")
    click(
        lambda: [o for o in by_css(browser, "[role=radiogroup] label") if o.text.strip() == "Dataset mask"][0],
        what="the dataset mask choice",
    )
    x, m, _ = dataset_image(app["inspected"].dataset, "mixed_rand", 2, 0)
    view = signal_view(app["inspected"], x, m)
    wait_for(
        lambda: all(
            shown(table_with(browser, "signal probability"), column) == expected(view.numbers[column])
            for column in ("image", "signal", "context")
        ),
        what="the signal of the object mask",
    )
    wait_for(lambda: table_with(browser, "p(original class)"), what="the background transforms")
    wait_for(lambda: browser.execute_script(IMAGES_SHOWN, 3), what="the three figures")
    screenshot(browser, tmp_path, "signal", module=True)


@pytest.mark.slow
def test_bad_input_is_a_message_and_the_page_goes_on(app, tmp_path):
    from selenium.webdriver.common.keys import Keys

    browser = app["browser"]
    bad = tmp_path / "not_an_image.png"
    bad.write_text("plain text")
    open_with_image(app, bad)
    body = lambda: browser.find_element("tag name", "body").text  # noqa: E731
    wait_for(lambda: "not_an_image.png is not an image Pillow can read" in body(), what="the upload message")
    by_css(browser, "input[type=file]")[0].send_keys(str(app["image"]))
    wait_for(lambda: table_with(browser, "transformed probability"), what="the page working again")

    choose(browser, "Signal")
    click(
        lambda: [o for o in by_css(browser, "[role=radiogroup] label") if o.text.strip() == "Type coordinates"][0],
        what="the signal choices",
    )
    [shape] = wait_for(lambda: [s for s in by_css(browser, "[data-testid=stSelectbox]") if "shape" in s.text])
    shape.find_element("css selector", "input").send_keys("polygon" + Keys.ENTER)
    field = wait_for(
        lambda: [
            f for f in by_css(browser, "[data-testid=stTextInput] input") if "polygon" in f.get_attribute("aria-label")
        ]
    )[0]
    field.send_keys("3 3, 20 20" + Keys.ENTER)
    wait_for(lambda: "a polygon needs at least 3 points, got 2" in body(), what="the polygon message")
    field.send_keys(", 3 20" + Keys.ENTER)
    wait_for(lambda: table_with(browser, "signal probability"), what="the signal of a triangle")
    screenshot(browser, tmp_path, "bad_input")


def test_the_page_loads_checkpoints_only_from_under_its_roots_and_never_unpickles(app, tmp_path):
    """Issue 24: a path outside the run folder (the default root) and a file in it whose unpickling would run code
    are each one message; an unfinished checkpoint loads with a warning."""
    from selenium.webdriver.common.keys import Keys

    browser = app["browser"]
    ckpt = torch.load(app["run"] / "checkpoint.pt", weights_only=True)
    marker = tmp_path / "marker"
    torch.save({**ckpt, "extra": Marker(marker)}, app["run"] / "evil.pt")
    torch.save({**ckpt, "finished": False, "epoch": 1, "epochs": 3}, app["run"] / "unfinished.pt")
    open_with_image(app)
    wait_for(lambda: table_with(browser, "transformed probability"), what="the first module")
    body = lambda: browser.find_element("tag name", "body").text  # noqa: E731
    click(
        lambda: [e for e in by_css(browser, "[data-testid=stExpander] summary") if "checkpoint" in e.text.lower()][0],
        what="the checkpoint expander",
    )

    def load(text: str) -> None:
        field = wait_for(
            lambda: [
                f
                for f in by_css(browser, "[data-testid=stTextInput] input")
                if "checkpoint" in f.get_attribute("aria-label")
            ]
        )[0]
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(text + Keys.ENTER)
        click(
            lambda: [b for b in by_css(browser, "[data-testid=stButton] button") if b.text == "Load"][0],
            what="the Load button",
        )

    outside, refused, unloadable = (
        tmp_path / "checkpoint.pt",
        "can be loaded here",
        "not a checkpoint this page can load",
    )
    torch.save(ckpt, outside)
    load(str(outside))
    wait_for(lambda: f"only checkpoints under {app['run']}" in body(), what="the roots message")
    load("evil.pt")
    wait_for(lambda: unloadable in body() and refused not in body(), what="the one message for evil.pt")
    assert body().count(unloadable) == 1 and "Python objects" not in body() and not marker.exists()
    assert table_with(browser, "transformed probability")  # the page still shows the current model's views
    load("unfinished.pt")
    wait_for(
        lambda: "this checkpoint is unfinished (epoch 1 of 3)" in body() and unloadable not in body(),
        what="the unfinished checkpoint's warning",
    )
    assert str(app["run"] / "unfinished.pt") in body() and not marker.exists()
    screenshot(browser, tmp_path, "unfinished_checkpoint")
