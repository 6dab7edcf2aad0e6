"""The web pages' API with Starlette's TestClient (fast, no browser): the monitor's figures and
frames, the zone editor's save-and-apply, the annotator's CSV, and the 4xx answers."""

from __future__ import annotations

import csv
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from streamcount.cli import main
from streamcount.errors import InputError
from streamcount.frames import Frame, Result
from streamcount.zones import ZoneSet
from tests.runtime.helpers import write_video

pytest.importorskip("starlette", reason="the web extra (starlette) is not installed")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx (the dev extra)")
from starlette.testclient import TestClient

from streamcount.web import check_exposure, parse_address
from streamcount.web.annotate import PointStore, annotate_app
from streamcount.web.monitor import WebSink
from streamcount.web.server import BackgroundServer, guarded

SQUARE = [[0, 0], [40, 0], [40, 30], [0, 30]]


def result(source: str = "cam.mp4", index: int = 0, count: float = 3.5,
           zones: dict[str, float] | None = None, w: int = 64, h: int = 48) -> Result:
    img = np.full((h, w, 3), 90, np.uint8)
    res = Result(Frame(source, index, index / 10, time.time(), img), count,
                 np.zeros((h, w), np.float32), 4.0, count - 0.5, dict(zones or {}),
                 {k: v - 0.25 for k, v in (zones or {}).items()}, fps=12.0)
    res.annotated = np.full((h, w, 3), 200, np.uint8)
    return res


@pytest.fixture
def sink(tmp_path: Path) -> WebSink:
    s = WebSink("127.0.0.1", 0, labels={"cam.mp4": "cam", "rtsp://cam2/x": "x"},
                zone_file=tmp_path / "zones.json", jpeg_fps=100)
    applied: list[ZoneSet] = []
    s.apply_zones = applied.append
    s.applied = applied  # type: ignore[attr-defined]
    return s


@pytest.fixture
def client(sink: WebSink):
    sink._encoder = threading.Thread(target=sink._encode_loop, daemon=True)
    sink._encoder.start()
    with TestClient(sink.app()) as c:
        yield c
    sink.close()


def wait_for(pred: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


# -- addresses and exposure ------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("8080", ("127.0.0.1", 8080)), ("0", ("127.0.0.1", 0)),
    ("localhost:81", ("localhost", 81)), ("0.0.0.0:9000", ("0.0.0.0", 9000)),
    ("[::1]:8080", ("::1", 8080)),
])  # fmt: skip
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "http", "host:", ":80", "70000", "-1", "a:b:c"])
def test_parse_address_refuses(text: str) -> None:
    with pytest.raises(InputError, match="--web"):
        parse_address(text)


@pytest.mark.parametrize("host,token,ok", [
    ("127.0.0.1", None, True), ("localhost", None, True), ("::1", None, True),
    ("0.0.0.0", None, False), ("192.168.1.5", None, False), ("0.0.0.0", "s3cret", True),
])  # fmt: skip
def test_a_token_is_needed_off_loopback(host: str, token: str | None, ok: bool) -> None:
    if ok:
        check_exposure(host, token)
    else:
        with pytest.raises(InputError, match=r"reachable from other machines.*--web-token"):
            check_exposure(host, token)


def test_run_refuses_an_open_host_without_a_token(tmp_path: Path, capsys: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMCOUNT_WEB_TOKEN", raising=False)
    rc = main(["run", str(tmp_path / "none.mp4"), "--web", "0.0.0.0:0", "--no-dashboard"])
    err = capsys.readouterr().err
    assert rc != 0 and "Traceback" not in err
    assert "--web 0.0.0.0 is reachable from other machines: give --web-token" in err


# -- the monitor -----------------------------------------------------------------------------

def test_status_has_the_figures_of_the_last_result(sink: WebSink, client: TestClient) -> None:
    for i in range(3):
        sink.write(result(index=i, count=2.0 + i, zones={"door": 1.0 + i}))
    data = client.get("/api/status").json()
    cam = {s["id"]: s for s in data["sources"]}["cam"]
    assert cam["name"] == "cam.mp4" and cam["frames"] == 3 and cam["frame"] == 2
    assert cam["count"] == 4.0 and cam["smoothed"] == 3.5 and cam["fps"] == 12.0
    assert cam["zones"] == {"door": 3.0} and cam["zones_smoothed"] == {"door": 2.75}
    assert cam["size"] == [64, 48] and len(cam["history"]) >= 1
    assert "history" not in client.get("/api/status?history=0").json()["sources"][0]


def test_frames_are_jpegs_of_the_overlay_and_of_the_plain_frame(sink: WebSink,
                                                                client: TestClient) -> None:
    assert client.get("/api/frame/cam").status_code == 404  # nothing counted yet: a clear 404
    assert client.get("/api/frame/cam?raw=1").status_code == 404  # (and now both are watched)
    sink.write(result())
    wait_for(lambda: sink.by_id["cam"].jpeg is not None and sink.by_id["cam"].raw is not None)
    for query, level in (("", 200), ("?raw=1", 90)):
        r = client.get("/api/frame/cam" + query)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (48, 64, 3) and abs(float(img.mean()) - level) < 3


def test_the_monitor_draws_its_own_overlay_for_the_frames_it_shows(sink: WebSink,
                                                                   client: TestClient) -> None:
    res = result(zones={"door": 1.0})
    res.annotated = None  # no other sink asked for one: the pipeline drew nothing
    res.density = np.full((48, 64), 0.01, np.float32)
    sink.zones = ZoneSet.from_dict({"zones": [{"name": "door", "polygon": SQUARE}]})
    sink.write(res)  # nobody watching yet: the first request draws the latest frame
    assert sink.by_id["cam"].jpeg is None
    shown = cv2.imdecode(np.frombuffer(client.get("/api/frame/cam").content, np.uint8),
                         cv2.IMREAD_COLOR)
    plain = cv2.imdecode(np.frombuffer(client.get("/api/frame/cam?raw=1").content, np.uint8),
                         cv2.IMREAD_COLOR)
    assert shown.shape == plain.shape == (48, 64, 3)
    assert np.abs(shown.astype(int) - plain.astype(int)).mean() > 5  # heatmap, outline, text


def test_pictures_are_throttled(tmp_path: Path) -> None:
    s = WebSink("127.0.0.1", 0, labels={"cam.mp4": "cam"}, jpeg_fps=2)
    s.by_id["cam"].watch(raw=False)
    for i in range(50):  # no encoder running: what was queued stays pending
        s.write(result(index=i))
    assert len(s._pending) == 1  # newest wins, one per source
    assert s._pending["cam"].image is not None and not s._pending["cam"].raw


@pytest.mark.parametrize("watched", [None, "overlay", "raw"])
def test_pictures_are_encoded_only_while_a_page_asks_for_them(watched: str | None) -> None:
    s = WebSink("127.0.0.1", 0, labels={"cam.mp4": "cam"}, jpeg_fps=1000)
    feed = s.by_id["cam"]
    if watched is not None:
        feed.watch(raw=watched == "raw")
    s.write(result(index=0))
    job = s._pending.get("cam")
    assert (job is not None) == (watched is not None)
    if job is not None:
        assert job.raw == (watched == "raw")
    feed.watched_until = feed.raw_until = time.monotonic() - 1  # the page closed WATCH_S ago
    s._pending.clear()
    s.write(result(index=1))
    assert not s._pending and feed.frames == 2 and feed.last["frame"] == 1


def test_an_ended_source_still_shows_its_last_picture(sink: WebSink, client: TestClient) -> None:
    for i in range(5):  # counted while nobody watched; then the file ended
        sink.write(result(index=i))
    assert sink.by_id["cam"].jpeg is None
    r = client.get("/api/frame/cam")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize("path", ["/api/frame/nope", "/api/frame/..%2F..%2Fetc%2Fpasswd",
                                  "/api/frame/" + "x" * 5000])
def test_unknown_source_is_a_404_naming_the_known_ones(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404 and r.json()["error"]
    if "%2F" not in path:
        assert "unknown source" in r.json()["error"] and "cam, x" in r.json()["error"]


@pytest.mark.parametrize("page,marker", [("/", "monitor.js"), ("/zones", "zones.js"),
                                         ("/static/style.css", "--bg")])
def test_pages_are_served_from_the_package(client: TestClient, page: str, marker: str) -> None:
    r = client.get(page)
    assert r.status_code == 200 and marker in r.text
    assert "http://" not in r.text and "https://" not in r.text  # no CDN


# -- the zone editor -------------------------------------------------------------------------

def test_saved_zones_are_written_validated_and_applied(sink: WebSink, client: TestClient,
                                                       tmp_path: Path) -> None:
    data = {"frame_size": [64, 48], "roi": [[0, 0], [64, 0], [64, 48], [0, 48]],
            "zones": [{"name": "door", "polygon": SQUARE,
                       "alerts": [{"above": 5, "for": 2, "clear": 1}]}]}
    r = client.put("/api/zones", json=data)
    assert r.status_code == 200, r.text
    saved = ZoneSet.load(tmp_path / "zones.json")
    assert saved.names == ["door"] and saved.frame_size == (64, 48)
    assert saved.zones[0].alerts[0].above == 5 and saved.roi is not None
    applied = sink.applied  # type: ignore[attr-defined]
    assert len(applied) == 1 and applied[0].names == ["door"]
    assert client.get("/api/zones").json()["zones"]["zones"][0]["name"] == "door"
    assert client.get("/api/status").json()["zones"] == ["door"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_zones_save_as_yaml_by_suffix(tmp_path: Path) -> None:
    s = WebSink("127.0.0.1", 0, labels={"a": "a"}, zone_file=tmp_path / "z.yaml")
    s.set_zones({"zones": [{"name": "a", "polygon": SQUARE}]})
    assert ZoneSet.load(tmp_path / "z.yaml").names == ["a"]


@pytest.mark.parametrize("body,status,message", [
    ({"zones": [{"name": "bow", "polygon": [[0, 0], [9, 9], [9, 0], [0, 9]]}]}, 400,
     "intersects itself"),
    ({"zones": [{"name": "two", "polygon": [[0, 0], [9, 9]]}]}, 400, "at least 3"),
    ({"zones": [{"name": "s", "polygon": [["a", 0], [1, 1], [2, 0]]}]}, 400, "not a list of"),
    ({"zones": [{"name": "s", "polygon": SQUARE, "colour": "red"}]}, 400, "unknown key"),
    ({"zones": [{"name": "a", "polygon": SQUARE}, {"name": "a", "polygon": SQUARE}]}, 400,
     "used twice"),
    ({"zones": []}, 400, "nothing to count in"),
    ([1, 2], 400, "expected an object"),
])  # fmt: skip
def test_malformed_zones_are_a_400_and_change_nothing(sink: WebSink, client: TestClient,
                                                      tmp_path: Path, body: Any, status: int,
                                                      message: str) -> None:
    r = client.put("/api/zones", json=body)
    assert r.status_code == status and message in r.json()["error"]
    assert not (tmp_path / "zones.json").exists() and not sink.applied  # type: ignore[attr-defined]


@pytest.mark.parametrize("content,status", [(b"{not json", 400), (b"\xff\xfe", 400),
                                            (b" " * (2 << 20), 413)])
def test_bad_and_huge_bodies(client: TestClient, content: bytes, status: int) -> None:
    r = client.put("/api/zones", content=content, headers={"content-type": "application/json"})
    assert r.status_code == status and r.json()["error"]


def test_pipeline_swaps_zones_between_frames(tmp_path: Path) -> None:
    from streamcount.pipeline import Pipeline, PipelineConfig
    from streamcount.sinks import Sink
    from streamcount.sources import open_source
    from tests.runtime.helpers import write_images

    src = open_source(str(write_images(tmp_path / "imgs", n=12, w=32, h=24)))

    class Ones:
        def count_batch(self, frames: Any) -> list[Any]:
            from types import SimpleNamespace

            return [SimpleNamespace(count=float(f.shape[0] * f.shape[1]), latency_ms=1.0,
                                    density=np.ones(f.shape[:2], np.float32)) for f in frames]

    class Swap(Sink):
        def __init__(self) -> None:
            self.seen: list[dict[str, float]] = []

        def write(self, res: Result) -> None:
            self.seen.append(dict(res.zones))
            if len(self.seen) == 4:
                pipe.set_zones(ZoneSet.from_dict(
                    {"zones": [{"name": "left", "polygon": [[0, 0], [16, 0], [16, 24], [0, 24]]}]}))

    sink = Swap()
    pipe = Pipeline([src], Ones(), [sink], PipelineConfig(batch=1, smooth="none"))
    pipe.run()
    assert sink.seen[:4] == [{}] * 4
    assert sink.seen[4:] and all(set(z) == {"left"} and z["left"] > 300 for z in sink.seen[4:])
    assert pipe.zones.names == ["left"]


# -- the token -------------------------------------------------------------------------------

def test_token_guards_every_route(sink: WebSink) -> None:
    with TestClient(guarded(sink.app(), "s3cret")) as c:
        assert c.get("/api/status").status_code == 401
        assert c.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/status", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        r = c.get("/zones?token=s3cret", follow_redirects=False)  # once in the address
        assert r.status_code == 303 and "streamcount_token" in r.headers["set-cookie"]
        assert r.headers["location"].endswith("/zones") and "s3cret" not in r.headers["location"]
        assert c.get(r.headers["location"]).status_code == 200  # then the cookie
        assert c.get("/api/status").status_code == 200


def test_the_server_logs_no_token(sink: WebSink, caplog: pytest.LogCaptureFixture) -> None:
    import http.cookiejar
    import urllib.error
    import urllib.request

    s = WebSink("127.0.0.1", 0, token="s3cret-value", labels={"cam.mp4": "cam"})
    with caplog.at_level("DEBUG"):
        s.open()
        try:
            base = f"http://127.0.0.1:{s.port}/api/status"
            # the token in the address: a cookie is set and the address loses the token
            jar = http.cookiejar.CookieJar()
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
            with opener.open(f"{base}?token=s3cret-value", timeout=5) as r:
                assert r.status == 200 and "token" not in r.url
            with pytest.raises(urllib.error.HTTPError) as exc:
                urllib.request.urlopen(base, timeout=5)
            assert exc.value.code == 401
        finally:
            s.close()
    assert "s3cret-value" not in caplog.text
    assert f"http://127.0.0.1:{s.port}/" in caplog.text


def test_a_taken_port_is_one_line() -> None:
    from starlette.applications import Starlette

    from streamcount.errors import OutputError

    a = BackgroundServer(Starlette(), "127.0.0.1", 0)
    a.start()
    try:
        with pytest.raises(OutputError, match=r"cannot serve the web page on 127.0.0.1:"):
            BackgroundServer(Starlette(), "127.0.0.1", a.port).start()
    finally:
        a.stop()


def test_run_with_web_counts_as_without(tmp_path: Path, tiny_model: Path) -> None:
    v = write_video(tmp_path / "v.mp4", n=12, w=64, h=48)
    rows = {}
    for flag in ([], ["--web", "127.0.0.1:0", "--web-zones", str(tmp_path / "z.json")]):
        out = tmp_path / f"c{len(flag)}.csv"
        assert main(["run", str(v), "--model", str(tiny_model), "--no-dashboard", "--quiet",
                     "--csv", str(out), *flag]) == 0
        rows[len(flag)] = [r["count"] for r in csv.DictReader(out.open())]
    assert rows[0] == rows[4] and len(rows[0]) == 12


# -- the annotator ---------------------------------------------------------------------------

@pytest.fixture
def frames_dir(tmp_path: Path) -> Path:
    d = tmp_path / "frames"
    (d / "sub").mkdir(parents=True)
    for name in ("a.jpg", "b.png", "sub/c.jpg"):
        cv2.imwrite(str(d / name), np.full((40, 60, 3), 100, np.uint8))
    (tmp_path / "secret.png").write_bytes(b"secret")
    return d


@pytest.fixture
def annotator(frames_dir: Path):
    store = PointStore(frames_dir)
    with TestClient(annotate_app(store)) as c:
        yield c, store


def test_annotator_lists_serves_and_saves(annotator: Any, frames_dir: Path) -> None:
    from streamcount.training.datasets.points import parse_csv

    c, _ = annotator
    listing = c.get("/api/images").json()
    assert [i["name"] for i in listing["images"]] == ["a.jpg", "b.png", "sub/c.jpg"]
    assert c.get("/api/image/sub/c.jpg").content == (frames_dir / "sub/c.jpg").read_bytes()
    got = c.get("/api/points/a.jpg").json()
    assert got == {"name": "a.jpg", "width": 60, "height": 40, "points": [], "done": False}
    assert c.put("/api/points/a.jpg", json={"points": [[1, 2], [59.4, 39.4]]}).json()["points"] == 2
    assert c.put("/api/points/b.png", json={"points": []}).status_code == 200
    assert c.put("/api/points/sub/c.jpg", json={"points": [[10.25, 5.5]]}).status_code == 200
    text = (frames_dir / "points.csv").read_text()
    assert text.splitlines() == ["image,x,y", "a.jpg,1,2", "a.jpg,59.4,39.4", "b.png,,",
                                 "sub/c.jpg,10.25,5.5"]
    parsed = parse_csv(frames_dir / "points.csv")  # what `prepare points` reads
    assert parsed["a.jpg"].points.tolist() == [[1, 2], [59.4, 39.4]]
    assert len(parsed["b.png"].points) == 0
    assert not list(frames_dir.glob(".*tmp"))
    # a restart reads the file back
    again = PointStore(frames_dir)
    assert again.points["sub/c.jpg"] == [[10.25, 5.5]] and again.points["b.png"] == []


def test_prepare_points_reads_the_annotators_csv(annotator: Any, frames_dir: Path) -> None:
    pytest.importorskip("scipy", reason="prepare needs the train extra")
    from streamcount.training.datasets import points

    c, _ = annotator
    c.put("/api/points/a.jpg", json={"points": [[3, 4], [20, 30]]})
    c.put("/api/points/b.png", json={"points": [[5, 5]]})
    samples = {s.name: s for s in points.read(frames_dir, "train")}
    assert set(samples) == {"a.jpg", "b.png"}
    assert samples["a.jpg"].points.tolist() == [[3, 4], [20, 30]]


@pytest.mark.parametrize("path", ["/api/points/../secret.png", "/api/points/%2e%2e/secret.png",
                                  "/api/image/..%2Fsecret.png", "/api/image//etc/passwd",
                                  "/api/points/nope.jpg", "/api/image/points.csv"])
def test_paths_outside_the_folder_are_404(annotator: Any, path: str) -> None:
    c, _ = annotator
    for method in ("get", "put"):
        r = getattr(c, method)(path, **({"json": {"points": []}} if method == "put" else {}))
        writable = path.startswith("/api/points/") or method == "get"
        assert r.status_code == (404 if writable else 405), (method, path, r.text)
        assert r.json()["error"]


@pytest.mark.parametrize("body,message", [
    ({"points": [[60, 1]]}, "outside the 60x40 image"),
    ({"points": [[-1, 1]]}, "outside"),
    ({"points": [[1]]}, "expected [x, y]"),
    ({"points": [["1", 2]]}, "expected [x, y]"),
    ({"points": [[True, 2]]}, "expected [x, y]"),
    ({"points": "1,2"}, "must be a list"),
    ({"pts": []}, 'expected {"points"'),
    ({"points": [[1, 1]] * 20_001}, "at most"),
])  # fmt: skip
def test_bad_points_are_a_400_and_keep_the_csv(annotator: Any, frames_dir: Path, body: Any,
                                               message: str) -> None:
    c, _ = annotator
    c.put("/api/points/a.jpg", json={"points": [[1, 1]]})
    before = (frames_dir / "points.csv").read_text()
    r = c.put("/api/points/a.jpg", json=body)
    assert r.status_code in (400, 413) and r.json()["error"]
    if r.status_code == 400:
        assert message in r.json()["error"]
    assert (frames_dir / "points.csv").read_text() == before


def test_nan_points_are_refused(annotator: Any) -> None:
    c, _ = annotator
    r = c.put("/api/points/a.jpg", content=b'{"points": [[NaN, 1]]}')
    assert r.status_code == 400


def test_annotate_page_is_served(annotator: Any) -> None:
    c, _ = annotator
    assert "annotate.js" in c.get("/").text and c.get("/static/annotate.js").status_code == 200


@pytest.mark.parametrize("args,message", [
    (["annotate", "/nonexistent-folder"], "is not a folder"),
    (["annotate", "{empty}"], "no images"),
    (["annotate", "{empty}", "--web", "0.0.0.0:0"], "reachable from other machines"),
    (["annotate", "{empty}", "--web", "x:y"], "expected [HOST:]PORT"),
])  # fmt: skip
def test_annotate_bad_input_is_one_line(tmp_path: Path, capsys: Any, args: list[str],
                                        message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMCOUNT_WEB_TOKEN", raising=False)
    (tmp_path / "empty").mkdir()
    rc = main([a.replace("{empty}", str(tmp_path / "empty")) for a in args])
    err = capsys.readouterr().err
    assert rc != 0 and message in err and "Traceback" not in err


# -- streamcount frames ----------------------------------------------------------------------

def test_frames_grabs_every_n_seconds(tmp_path: Path) -> None:
    v = write_video(tmp_path / "v.mp4", n=40, w=64, h=48, fps=10)
    out = tmp_path / "frames"
    assert main(["frames", str(v), "--every", "1s", "--count", "3", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["frame_0001.jpg", "frame_0002.jpg", "frame_0003.jpg"]
    assert cv2.imread(str(out / names[0])).shape == (48, 64, 3)
    # the source ends first: what there is, and a warning
    assert main(["frames", str(v), "--every", "1s", "--count", "9", "--out",
                 str(tmp_path / "f2")]) == 0
    assert len(list((tmp_path / "f2").iterdir())) == 4  # t = 0, 1, 2, 3 s


@pytest.mark.parametrize("extra,message", [
    (["--every", "soon"], "bad duration"), (["--count", "0"], "--count"),
    (["--prefix", "../x"], "--prefix"),
])  # fmt: skip
def test_frames_bad_input_is_one_line(tmp_path: Path, capsys: Any, extra: list[str],
                                      message: str) -> None:
    v = write_video(tmp_path / "v.mp4", n=5)
    rc = main(["frames", str(v), "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert rc != 0 and message in err and "Traceback" not in err


def test_frames_never_overwrites(tmp_path: Path, capsys: Any) -> None:
    v = write_video(tmp_path / "v.mp4", n=5)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "frame_0001.jpg").write_bytes(b"mine")
    assert main(["frames", str(v), "--out", str(tmp_path / "o"), "--count", "1"]) != 0
    assert "exists" in capsys.readouterr().err
    assert (tmp_path / "o" / "frame_0001.jpg").read_bytes() == b"mine"


def test_zone_file_content_round_trips() -> None:
    d = {"frame_size": [64, 48], "zones": [{"name": "a", "polygon": SQUARE}]}
    assert json.loads(json.dumps(ZoneSet.from_dict(d).to_dict())) == d


# -- streamcount fleet --web -----------------------------------------------------------------

def test_fleet_web_refuses_an_open_host_before_ray(capsys: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import REPO

    monkeypatch.delenv("STREAMCOUNT_WEB_TOKEN", raising=False)
    rc = main(["fleet", str(REPO / "examples" / "fleet.yaml"), "--web", "0.0.0.0:0"])
    err = capsys.readouterr().err
    assert rc != 0 and "--web 0.0.0.0 is reachable from other machines" in err


def test_fleet_monitor_shows_figures_and_refuses_zone_edits() -> None:
    from types import SimpleNamespace

    from streamcount.commands.fleet import FleetView
    from streamcount.stats import SourceStats

    st = SourceStats("cam-a", live=False)
    runner = SimpleNamespace(stats_map=lambda: {"cam-a": st}, started=time.monotonic() - 2)
    s = WebSink("127.0.0.1", 0, labels={"cam-a": "cam-a"})
    s.attach(FleetView(runner))
    res = result("cam-a", count=5.0, zones={"z": 2.0})
    res.annotated = None
    res.frame.image = np.zeros((0, 0, 3), np.uint8)  # a fleet row has no picture
    s.write(res)
    st.written(res)
    assert not s._pending
    with TestClient(s.app()) as c:
        data = c.get("/api/status").json()
        assert data["sources"][0]["count"] == 5.0 and data["sources"][0]["state"] == "starting"
        assert 0 < data["e2e_fps"] < 1
        assert c.get("/api/frame/cam-a").status_code == 404
        r = c.put("/api/zones", json={"zones": [{"name": "a", "polygon": SQUARE}]})
        assert r.status_code == 409 and "fleet" in r.json()["error"]


def test_annotator_density_hint(frames_dir: Path, tiny_model: Path) -> None:
    from streamcount.engine import Counter
    from streamcount.web.annotate import DensityHints

    store = PointStore(frames_dir)
    with TestClient(annotate_app(store)) as c:
        assert c.get("/api/images").json()["hint"] is False
        r = c.get("/api/hint/a.jpg")
        assert r.status_code == 404 and "--model" in r.json()["error"]
    hints = DensityHints(Counter(str(tiny_model), threads=1), store)
    with TestClient(annotate_app(store, hints)) as c:
        assert c.get("/api/images").json()["hint"] is True
        r = c.get("/api/hint/sub/c.jpg")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        png = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_UNCHANGED)
        assert png.shape == (40, 60, 4)
        # the tiny model: 1e-3 x mean grey / 255 per pixel
        assert float(r.headers["x-count"]) == pytest.approx(2400 * 1e-3 * 100 / 255, rel=0.02)
        assert c.get("/api/hint/../secret.png").status_code == 404


def test_a_stalled_encoder_never_blocks_the_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    real = cv2.imencode
    release = threading.Event()
    calls = []

    def stalled(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        release.wait(30)  # a JPEG encoder (or a browser) stuck until the test lets it go
        return real(*args, **kwargs)

    monkeypatch.setattr(cv2, "imencode", stalled)
    s = WebSink("127.0.0.1", 0, labels={"cam.mp4": "cam"}, jpeg_fps=1000)
    s.by_id["cam"].watch(raw=False)
    s._encoder = threading.Thread(target=s._encode_loop, daemon=True)
    s._encoder.start()
    try:
        writer = threading.Thread(target=lambda: [s.write(result(index=i)) for i in range(300)],
                                  daemon=True)
        writer.start()
        writer.join(20)  # a hang guard only: a writer that waits on the encoder never ends
        # all 300 frames were written while the encoder was still stuck in its first frame
        assert not writer.is_alive() and not release.is_set() and len(calls) <= 1
        release.set()
        wait_for(lambda: s.by_id["cam"].jpeg is not None)
    finally:
        release.set()
        s.close()


def test_token_guard_refuses_websockets_it_cannot_check() -> None:
    import asyncio

    from streamcount.web.server import TokenGuard

    reached: list[str] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        reached.append(scope["type"])

    sent: list[dict] = []

    async def send(msg):  # type: ignore[no-untyped-def]
        sent.append(msg)

    async def receive():  # type: ignore[no-untyped-def]
        return {}

    guard = TokenGuard(app, "s3cret")
    asyncio.run(guard({"type": "websocket", "headers": [], "query_string": b""}, receive, send))
    asyncio.run(guard({"type": "lifespan"}, receive, send))
    assert reached == ["lifespan"] and sent == [{"type": "websocket.close", "code": 1008}]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_the_web_threads_yield_to_counting() -> None:
    """The server and encoder threads run at a lower CPU priority than the counting threads."""
    import os

    from streamcount.web.server import BACKGROUND_NICE, lower_thread_priority

    seen: dict[str, Any] = {}

    def probe() -> None:
        seen["lowered"] = lower_thread_priority()
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen["lowered"] is True
    assert seen["nice"] == min(19, mine + BACKGROUND_NICE)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # caller unchanged
    from starlette.applications import Starlette

    server = BackgroundServer(Starlette(), "127.0.0.1", 0)
    sink = WebSink("127.0.0.1", 0)
    server.start()
    sink.open()
    try:
        for thread in (server.thread, sink._encoder, sink.server.thread):
            assert thread is not None and thread.native_id is not None
            deadline = time.monotonic() + 5  # a thread lowers itself when it starts
            while (os.getpriority(os.PRIO_PROCESS, thread.native_id) != seen["nice"]
                   and time.monotonic() < deadline):
                time.sleep(0.01)
            assert os.getpriority(os.PRIO_PROCESS, thread.native_id) == seen["nice"]
    finally:
        sink.close()
        server.stop()
