"""The three pages end to end in a real headless browser (the system's Chromium, driven by
Selenium): the monitor shows the counts of the CSV, a polygon drawn with the mouse is saved
and changes the zone counts, and clicks in the annotator land in the points CSV at the right
pixel.

They skip, with the reason, where Selenium, Chromium or chromedriver is missing (`.ci/run`
installs Chromium from the system's packages). With ``STREAMCOUNT_SCREENSHOTS=1`` they save
the README's pictures to docs/img/ (otherwise to a temporary folder).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamcount.frames import Frame
from streamcount.sources import Source
from streamcount.zones import ZoneSet
from tests.conftest import REPO

pytest.importorskip("starlette", reason="the web extra (starlette) is not installed")
pytest.importorskip("uvicorn", reason="the web extra (uvicorn) is not installed")
pytest.importorskip("selenium", reason="selenium is not installed (the dev extra has it)")

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
from selenium.webdriver.common.by import By

pytestmark = pytest.mark.slow


def _browser_paths() -> tuple[str, str]:
    binary = next((p for n in ("chromium", "chromium-browser", "google-chrome")
                   if (p := shutil.which(n))), None)
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        pytest.skip("no Chromium and chromedriver here (Debian: apt-get install chromium "
                    "chromium-driver; .ci/run installs them)")
    return binary, driver


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    binary, driver_path = _browser_paths()
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,860", "--force-device-scale-factor=1",
                "--disable-extensions", "--no-first-run"):
        opts.add_argument(arg)
    try:
        driver = webdriver.Chrome(options=opts,
                                  service=webdriver.ChromeService(executable_path=driver_path))
    except WebDriverException as exc:
        pytest.skip(f"Chromium does not start here: {str(exc.msg or exc).splitlines()[0]}")
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: docs/img/ with STREAMCOUNT_SCREENSHOTS=1, else a temporary folder."""
    if os.environ.get("STREAMCOUNT_SCREENSHOTS"):
        out = REPO / "docs" / "img"
        out.mkdir(parents=True, exist_ok=True)
        return out
    return tmp_path


def wait_for(pred: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    end = time.monotonic() + timeout
    while True:
        try:
            value = pred()
        except (WebDriverException, OSError, KeyError, ValueError, IndexError):
            value = None
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def click_at(driver: Any, element: Any, x: float, y: float, button: str = "left") -> None:
    """Click ``element`` at (x, y) CSS pixels from its top-left corner."""
    size = element.size
    chain = ActionChains(driver).move_to_element_with_offset(
        element, round(x - size["width"] / 2), round(y - size["height"] / 2))
    (chain.context_click() if button == "right" else chain.click()).perform()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


# -- the monitor -----------------------------------------------------------------------------

def test_monitor_shows_the_counts_of_the_csv(browser: Any, tmp_path: Path, shots: Path) -> None:
    from streamcount import defaults
    from streamcount.commands.run import example_clip
    from streamcount.engine import Counter
    from streamcount.pipeline import Pipeline, PipelineConfig
    from streamcount.sinks.csv import CsvSink
    from streamcount.sources import SourceOptions, open_source, slug
    from streamcount.web.monitor import WebSink

    clip = example_clip()
    if not clip.is_file():
        pytest.skip(f"the example clip {clip} is missing")
    zones = ZoneSet.from_dict({"zones": [
        {"name": "left", "polygon": [[0, 0], [240, 0], [240, 360], [0, 360]],
         "alerts": [{"above": 0.1, "for": 0}]},
        {"name": "right", "polygon": [[240, 0], [480, 0], [480, 360], [240, 360]]}]})
    src = open_source(str(clip), SourceOptions(stride=2))
    counter = Counter(defaults.MODEL, threads=1)
    sink_csv = CsvSink(tmp_path / "counts.csv", zones.names)
    web = WebSink("127.0.0.1", 0, labels={src.name: slug(src.name)}, zones=zones,
                  zone_file=tmp_path / "zones.json", jpeg_fps=30)
    pipe = Pipeline([src], counter, [sink_csv, web],
                    PipelineConfig(batch=1, max_frames=40, smooth="ema:0.3"), zones)
    web.attach(pipe)
    with sink_csv, web:
        pipe.run()
        rows = list(csv.DictReader((tmp_path / "counts.csv").open()))
        last = rows[-1]
        browser.get(f"http://127.0.0.1:{web.port}/")
        card = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, ".card"), what="a card")
        wait_for(lambda: card.get_attribute("data-frames") == str(len(rows)), what="all frames")
        count = card.find_element(By.CSS_SELECTOR, ".count")
        assert float(count.get_attribute("data-value")) == float(last["count"])
        assert count.text == f"{float(last['count']):.2f}"
        assert card.find_element(By.CSS_SELECTOR, ".smoothed").text == \
            f"{float(last['smoothed']):.2f}"
        for zone in ("left", "right"):
            cell = card.find_element(By.CSS_SELECTOR, f"tr[data-zone='{zone}'] .zone-count")
            assert float(cell.get_attribute("data-value")) == float(last[f"zone:{zone}"])
        assert float(browser.find_element(By.ID, "engine-fps").text) > 0
        wait_for(lambda: browser.execute_script(
            "return document.querySelector('img.frame').naturalWidth") == 480, what="the picture")
        assert "ALERT" in card.find_element(By.CSS_SELECTOR, "ul.alerts").text
        drawn = browser.execute_script(  # the chart has lines on it (it is not blank)
            "const c = document.querySelector('canvas.chart');"
            "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n;")
        assert drawn > 50
        browser.set_window_size(1280, 1180)  # the whole card in the picture
        try:
            time.sleep(0.6)  # one more poll: the chart redrawn at the new size
            browser.save_screenshot(str(shots / "monitor.png"))
        finally:
            browser.set_window_size(1280, 860)


def test_a_token_in_the_address_once_opens_the_monitor(browser: Any) -> None:
    from streamcount.frames import Result
    from streamcount.web.monitor import WebSink

    web = WebSink("127.0.0.1", 0, token="s3cret", labels={"cam": "cam"})
    with web:
        img = np.full((48, 64, 3), 128, np.uint8)
        web.write(Result(Frame("cam", 0, 0.0, time.time(), img), 2.5,
                         np.zeros((48, 64), np.float32), 1.0, 2.5))
        browser.get(f"http://127.0.0.1:{web.port}/api/status")
        assert "unauthorized" in browser.page_source
        browser.get(f"http://127.0.0.1:{web.port}/?token=s3cret")
        assert "token" not in browser.current_url  # the cookie carries it
        count = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, ".card .count"))
        wait_for(lambda: count.text == "2.50", what="the count")
        browser.delete_all_cookies()


# -- the zone editor -------------------------------------------------------------------------

class LoopSource(Source):
    """The same frame again and again, live, until stopped."""

    kind = "loop"

    def __init__(self, image: np.ndarray) -> None:
        super().__init__("loop")
        self.live, self.fps, self.image = True, 20.0, image

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        i = 0
        while stop is None or not stop.is_set():
            yield Frame(self.name, i, i / self.fps, time.time(), self.image)
            i += 1
            time.sleep(1 / self.fps)
        self.state = "stopped"


def test_a_polygon_drawn_with_the_mouse_is_saved_and_counted(browser: Any, tmp_path: Path,
                                                             tiny_model: Path,
                                                             shots: Path) -> None:
    from streamcount.commands.run import example_clip
    from streamcount.engine import Counter
    from streamcount.pipeline import Pipeline, PipelineConfig
    from streamcount.sources import read_frames
    from streamcount.web.monitor import WebSink

    clip = example_clip()
    if clip.is_file():  # a real picture to draw on (and for the README)
        img = next(iter(read_frames(str(clip)))).image[:240, :320].copy()
    else:
        img = np.zeros((240, 320, 3), np.uint8)
        img[:, :160] = 255
    # the tiny model's density is 1e-3 x the pixels' mean over channels / 255
    density = 1e-3 * img.astype(np.float32).mean(axis=2) / 255
    src = LoopSource(img)
    pipe_zones = ZoneSet.empty()
    web = WebSink("127.0.0.1", 0, labels={"loop": "loop"}, zones=pipe_zones,
                  zone_file=tmp_path / "zones.json", jpeg_fps=10)
    pipe = Pipeline([src], Counter(str(tiny_model), threads=1), [web],
                    PipelineConfig(batch=1, smooth="none"), pipe_zones)
    web.attach(pipe)
    base = ""
    with web:
        base = f"http://127.0.0.1:{web.port}"
        pipe.start()
        try:
            wait_for(lambda: get_json(base + "/api/status")["sources"][0]["has_frame"],
                     what="a first frame")
            assert get_json(base + "/api/status")["sources"][0]["zones"] == {}
            browser.get(base + "/zones")
            wait_for(lambda: browser.execute_script("return window.zoneEditor.ready"),
                     what="the editor")
            canvas = browser.find_element(By.ID, "canvas")
            scale = browser.execute_script("return window.zoneEditor.scale")
            corners = [(20, 20), (140, 20), (140, 220), (20, 220)]
            browser.find_element(By.ID, "new-zone").click()
            for x, y in [*corners, corners[0]]:  # the first corner again closes it
                click_at(browser, canvas, (x + 0.5) * scale, (y + 0.5) * scale)
            name = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, ".shape input.name"),
                            what="the zone's name field")
            name.clear()
            name.send_keys("door")
            browser.find_element(By.CSS_SELECTOR, ".shape input.above").send_keys("10")
            browser.save_screenshot(str(shots / "zones.png"))
            browser.find_element(By.ID, "save").click()
            wait_for(lambda: "saved" in browser.find_element(By.ID, "message").text,
                     what="saved")
            saved = ZoneSet.load(tmp_path / "zones.json")
            assert saved.names == ["door"] and saved.frame_size == (320, 240)
            assert np.abs(saved.zones[0].polygon - np.array(corners)).max() <= 1
            assert saved.zones[0].alerts[0].above == 10
            zone_count = wait_for(lambda: get_json(base + "/api/status")["sources"][0]
                                  ["zones"].get("door"), what="a count in the new zone")
            expected = saved.counts(density)["door"]
            assert expected > 1 and zone_count == pytest.approx(expected, rel=0.02)
            browser.get(base + "/")  # and the monitor shows it
            cell = wait_for(lambda: browser.find_element(
                By.CSS_SELECTOR, "tr[data-zone='door'] .zone-count"), what="the door row")
            assert float(cell.get_attribute("data-value")) == pytest.approx(expected, rel=0.02)
        finally:
            pipe.stop()
            pipe.wait(10)
            pipe.join()


# -- the annotator ---------------------------------------------------------------------------

def test_clicks_in_the_annotator_land_in_the_csv(browser: Any, tmp_path: Path,
                                                 shots: Path) -> None:
    from streamcount import defaults
    from streamcount.cli import main
    from streamcount.commands.run import example_clip
    from streamcount.engine import Counter
    from streamcount.training.datasets.points import parse_csv
    from streamcount.web.annotate import DensityHints, PointStore, annotate_app
    from streamcount.web.server import BackgroundServer

    frames = tmp_path / "frames"
    clip = example_clip()
    if clip.is_file():
        assert main(["frames", str(clip), "--every", "5s", "--count", "2", "--out",
                     str(frames)]) == 0
    else:
        import cv2

        frames.mkdir()
        for i in (1, 2):
            cv2.imwrite(str(frames / f"frame_{i:04d}.jpg"), np.full((360, 480, 3), 99, np.uint8))
    names = sorted(p.name for p in frames.iterdir())
    assert len(names) == 2
    store = PointStore(frames)
    hints = DensityHints(Counter(defaults.MODEL, threads=1), store)
    server = BackgroundServer(annotate_app(store, hints), "127.0.0.1", 0, "annotator")
    server.start()
    points_csv = frames / "points.csv"

    def saved() -> dict[str, list[list[float]]]:
        if not points_csv.exists():
            return {}
        return {k: v.points.tolist() for k, v in parse_csv(points_csv).items()}

    try:
        browser.get(server.url)
        wait_for(lambda: browser.execute_script("return window.annotator.ready"), what="ready")
        canvas = browser.find_element(By.ID, "canvas")

        def click_pixel(px: float, py: float, button: str = "left") -> None:
            v = browser.execute_script("return window.annotator.view")
            click_at(browser, canvas, (px + 0.5) * v["z"] + v["ox"], (py + 0.5) * v["z"] + v["oy"],
                     button)

        targets = [(167, 163), (321, 125), (416, 177)]  # the heads of three walkers
        for i, (x, y) in enumerate(targets):
            click_pixel(x, y)
            wait_for(lambda n=i + 1: len(saved().get(names[0], [])) == n, 10, f"{i + 1} points")
        got = saved()[names[0]]
        assert np.abs(np.array(got) - np.array(targets)).max() <= 1.0, got
        assert browser.find_element(By.ID, "count").text == "3"
        ActionChains(browser).send_keys("h").perform()  # the model's density, faintly
        wait_for(lambda: "model: ~" in browser.find_element(By.ID, "hint-count").text, 20,
                 "the hint")
        browser.save_screenshot(str(shots / "annotate.png"))
        ActionChains(browser).send_keys("h").perform()
        # one more, undone; then delete one with a right-click: each change saved
        click_pixel(250, 320)
        wait_for(lambda: len(saved()[names[0]]) == 4, 10, "a fourth point")
        ActionChains(browser).send_keys("u").perform()
        wait_for(lambda: len(saved()[names[0]]) == 3, 10, "undo saved")
        click_pixel(321, 125, "right")
        wait_for(lambda: len(saved()[names[0]]) == 2, 10, "delete saved")
        assert np.abs(np.array(saved()[names[0]]) - np.array([targets[0], targets[2]])).max() <= 1
        # zoom in (keyboard): a click still lands on its pixel
        ActionChains(browser).send_keys("+").send_keys("+").perform()
        click_pixel(240, 180)
        wait_for(lambda: len(saved()[names[0]]) == 3, 10, "a zoomed click")
        assert np.abs(np.array(saved()[names[0]][-1]) - [240, 180]).max() <= 0.6
        z = browser.execute_script("return window.annotator.view.z")
        ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(canvas, 40, 30),
                                                 0, -120).perform()  # the wheel zooms too
        wait_for(lambda: browser.execute_script("return window.annotator.view.z") > z, 5,
                 "a wheel zoom")
        click_pixel(260, 190)
        wait_for(lambda: len(saved()[names[0]]) == 4, 10, "a click after the wheel")
        assert np.abs(np.array(saved()[names[0]][-1]) - [260, 190]).max() <= 0.6
        # the next frame with the keyboard
        ActionChains(browser).send_keys("\ue014").perform()  # the right arrow
        wait_for(lambda: browser.execute_script("return window.annotator.ready && "
                                                "window.annotator.name") == names[1], 10, "next")
        click_pixel(10, 20)
        wait_for(lambda: names[1] in saved(), 10, "the second frame's point")
        assert np.abs(np.array(saved()[names[1]]) - [[10, 20]]).max() <= 1.0
        assert not [p for p in frames.iterdir() if p.name.endswith(".tmp")]
    finally:
        server.stop()
