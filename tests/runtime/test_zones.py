"""Zone files: integrals over polygons, ROI, and every malformed file as one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from streamcount.errors import InputError
from streamcount.zones import ZoneSet, template


def test_zone_integrals_and_roi_on_synthetic_density() -> None:
    density = np.zeros((100, 200), np.float32)
    density[10, 10] = 1.0  # left zone, inside ROI
    density[50, 150] = 2.0  # right zone, inside ROI
    density[95, 150] = 4.0  # right zone, outside ROI
    zs = ZoneSet.from_dict({
        "roi": [[0, 0], [200, 0], [200, 80], [0, 80]],
        "zones": [{"name": "left", "polygon": [[0, 0], [100, 0], [100, 100], [0, 100]]},
                  {"name": "right", "polygon": [[100, 0], [200, 0], [200, 100], [100, 100]]}],
    })  # fmt: skip
    masked = zs.apply_roi(density)
    assert float(masked.sum()) == pytest.approx(3.0)
    assert zs.counts(masked) == pytest.approx({"left": 1.0, "right": 2.0})


def test_polygons_scale_to_the_frame() -> None:
    zs = ZoneSet.from_dict(template(200, 100))
    counts = zs.counts(np.ones((50, 100), np.float32))  # frames at half the file's size
    assert counts["left"] + counts["right"] == pytest.approx(50 * 100, rel=0.03)


@pytest.mark.parametrize(
    "content,needle",
    [
        ("", "is empty"),
        ("{not json", "not valid json"),
        ('{"zones": 3}', "must be a list"),
        ('{"zones": [{"name": "a"}]}', "needs a 'polygon'"),
        ('{"zones": [{"polygon": [[0, 0], [1, 1]]}]}', "at least 3"),
        ('{"zones": [{"polygon": [[0, 0], [10, 10], [10, 0], [0, 10]]}]}', "intersects itself"),
        ('{"zones": [{"polygon": [[0, 0], [5, 5], [10, 10]]}]}', "is empty"),
        ('{"frame_size": [100, 100], "zones": [{"polygon": [[200, 200], [300, 200], [300, 300]]}]}',
         "entirely outside"),
        ('{"zones": [{"name": "a", "polygon": [[0, 0], [9, 0], [9, 9]]},'
         ' {"name": "a", "polygon": [[0, 0], [9, 0], [9, 9]]}]}', "used twice"),
        ('{"zones": [{"polygon": [[0, 0], [9, 0], [9, 9]], "alerts": [{"for": 3}]}]}',
         "needs 'above' or 'below'"),
        ('[1, 2]', "expected an object"),
    ],
)
def test_malformed_zone_files(tmp_path: Path, content: str, needle: str) -> None:
    p = tmp_path / "zones.json"
    p.write_text(content)
    with pytest.raises(InputError, match=needle):
        ZoneSet.load(p)


def test_yaml_zone_file(tmp_path: Path) -> None:
    import yaml

    p = tmp_path / "zones.yaml"
    p.write_text(yaml.safe_dump(template(64, 48)))
    assert ZoneSet.load(p).names == ["left", "right"]
    assert json.loads(json.dumps(template(64, 48)))["frame_size"] == [64, 48]


@pytest.mark.parametrize("data,match", [
    ({"zone": [{"name": "a", "polygon": [[0, 0], [4, 0], [4, 4]]}]}, "unknown key.*zone"),
    ({"sources": [{"url": "cam.mp4"}], "cluster": {}}, "unknown key.*cluster, sources"),
    ({}, "no zones and no roi"),
    ({"zones": [{"name": "a", "polygon": [[0, 0], [4, 0], [4, 4]], "alert": []}]},
     "unknown key.*alert"),
    ({"zones": [{"name": "a", "polygon": [[0, 0], [4, 0], [4, 4]],
                 "alerts": [{"above": None}]}]}, "finite number"),
    ({"zones": [{"name": "a", "polygon": [[0, 0], [4, 0], [4, 4]],
                 "alerts": [{"above": "1"}]}]}, "finite number"),
    ({"zones": [{"name": "a", "polygon": [[0, 0], [4, 0], [4, 4]],
                 "alerts": [{"above": float("nan")}]}]}, "finite number"),
    ({"zones": [{"name": "a", "polygon": [[0, 0], [4, 0], [4, 4]],
                 "alerts": [{"above": 3, "for": -1}]}]}, "'for' must be >= 0"),
    ({"zones": [{"name": "a", "polygon": [[0, 0], [4, 0], [4, 4]],
                 "alerts": [{"above": 3, "fro": 2}]}]}, "unknown alert key.*fro"),
])  # fmt: skip
def test_zone_files_with_wrong_keys_or_values_are_refused(data: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        ZoneSet.from_dict(data, source="z.json")


def test_the_example_fleet_file_is_not_a_zone_file() -> None:
    from pathlib import Path

    fleet = Path(__file__).resolve().parents[2] / "examples" / "fleet.yaml"
    with pytest.raises(InputError, match="unknown key"):
        ZoneSet.load(fleet)


def test_an_alert_on_a_hovering_count_does_not_flap() -> None:
    """A count that dips under the threshold for less than `clear` seconds keeps the alert."""
    from streamcount.alerts import AlertMonitor
    from streamcount.zones import AlertRule

    mon = AlertMonitor("cam", {"door": [AlertRule(above=5, seconds=0.0, clear=1.0)]})
    counts = [6, 4.9, 5.1, 4.8, 5.2, 4.9, 6, 3, 3, 3, 3, 3, 3]  # 0.2 s apart
    events = [(e.event, round(t * 0.2, 1)) for t, c in enumerate(counts)
              for e in mon.update({"door": c}, t * 0.2, 0.0)]
    assert events == [("start", 0.0), ("end", 2.4)]  # one alert, ended 1 s after the last dip
    flappy = AlertMonitor("cam", {"door": [AlertRule(above=5, seconds=0.0, clear=0.0)]})
    n = sum(len(flappy.update({"door": c}, t * 0.2, 0.0)) for t, c in enumerate(counts))
    assert n > 4  # without a clear time the same counts flap


def _zone(name="a", poly=None):
    return {"name": name, "polygon": poly if poly is not None else [[0, 0], [9, 0], [9, 9]]}


@pytest.mark.parametrize("data,match", [
    ({"zones": [_zone(poly=[[np.cos(t) * 100 + 200, np.sin(t) * 100 + 200]
                            for t in np.linspace(0, 6.28, 2000, endpoint=False)])]},
     "2000 points: at most 1000"),
    ({"zones": [_zone(poly=[[0, 0], [2**31, 0], [2**31, 2**31], [0, 2**31]])]}, "beyond"),
    ({"zones": [_zone(f"z{i}") for i in range(300)]}, "300 zones: at most 256"),
    ({"zones": [_zone("\x1b[2Jboom")]}, "printable"),
    ({"zones": [_zone("a\nb")]}, "printable"),
    ({"zones": [_zone("nul\x00")]}, "printable"),
    ({"zones": [_zone("x" * 65)]}, "1-64 printable"),
])  # fmt: skip
def test_hostile_zone_files_are_refused_before_the_costly_checks(
    data: dict, match: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import streamcount.zones as zones

    def costly(poly: np.ndarray) -> bool:  # all edge pairs: quadratic in the points
        raise AssertionError(f"the self-intersection check ran on {len(poly)} points")

    monkeypatch.setattr(zones, "self_intersects", costly)
    with pytest.raises(InputError, match=match):
        ZoneSet.from_dict(data, source="z.json")


def test_a_1000_point_polygon_is_checked_for_crossings() -> None:
    t = np.linspace(0, 2 * np.pi, 1000, endpoint=False)
    poly = np.stack([np.cos(t) * 300 + 400, np.sin(t) * 300 + 400], 1)
    assert ZoneSet.from_dict({"zones": [_zone(poly=poly.tolist())]}).names == ["a"]
    crossed = poly.copy()
    crossed[[100, 600]] = crossed[[600, 100]]  # two far corners swapped: its edges cross
    with pytest.raises(InputError, match="intersects itself"):
        ZoneSet.from_dict({"zones": [_zone(poly=crossed.tolist())]})


@pytest.mark.parametrize("kind", ["zones", "fleet"])
def test_yaml_alias_bombs_are_refused_without_expanding(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} " + "[" + ", ".join([f"*{chr(96 + i)}"] * 9)
                     + "]")
    path = tmp_path / f"{kind}.yaml"
    path.write_text("\n".join(lines) + "\n")

    def expand(*args: object, **kwargs: object) -> None:
        raise AssertionError("the document was constructed (its aliases expanded)")

    monkeypatch.setattr(yaml, "safe_load", expand)
    monkeypatch.setattr(yaml, "compose", expand)
    with pytest.raises(InputError, match="alias"):
        if kind == "zones":
            ZoneSet.load(path)
        else:
            from streamcount.fleet.config import FleetConfig

            FleetConfig.load(path)


def test_sparse_masks_integrate_like_dense_ones() -> None:
    rng = np.random.default_rng(0)
    density = rng.random((120, 160)).astype(np.float32)
    polys = [[[10, 10], [150, 20], [140, 110], [20, 100]], [[-50, -50], [80, -10], [60, 70]],
             [[0, 0], [160, 0], [160, 120], [0, 120]]]
    zs = ZoneSet.from_dict({"zones": [_zone(f"z{i}", p) for i, p in enumerate(polys)]})
    got = zs.counts(density)
    import cv2

    for i, p in enumerate(polys):
        m = np.zeros((120, 160), np.uint8)
        cv2.fillPoly(m, [np.round(np.array(p)).astype(np.int32)], 1)
        assert got[f"z{i}"] == pytest.approx(float((density * m).sum()), rel=1e-5)


def test_many_zones_on_a_large_frame_stay_small() -> None:
    zones = [_zone(f"z{i}", [[i * 7, 0], [i * 7 + 6, 0], [i * 7 + 6, 6]]) for i in range(256)]
    zs = ZoneSet.from_dict({"zones": zones})
    _, masks = zs.masks(1080, 1920)
    assert sum(m.mask.nbytes for m in masks) < 1_000_000  # dense masks: 2 GB
