"""Regenerate docs/img/overlay_pets2009.png: frame 100 of the example clip through the bundled
default model with the zones of examples/pets2009_zones.json, drawn as `streamcount run` does.

    python docs/make_overlay.py
"""

from __future__ import annotations

from pathlib import Path

import cv2

from streamcount import Counter
from streamcount.overlay import Overlay
from streamcount.zones import ZoneSet

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    cap = cv2.VideoCapture(str(REPO / "examples" / "pets2009_s2l1.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 100)
    ok, frame = cap.read()
    assert ok, "cannot read frame 100 of the example clip"
    counter = Counter(device="cpu", precision="fp32")
    zones = ZoneSet.load(REPO / "examples" / "pets2009_zones.json")
    res = counter.count(frame)
    density = zones.apply_roi(res.density)
    img = Overlay().draw(frame, density, float(density.sum()), zones=zones,
                         label=f"pets2009_s2l1.mp4 - model {counter.name}")
    out = REPO / "docs" / "img" / "overlay_pets2009.png"
    cv2.imwrite(str(out), img)
    print(f"wrote {out}: count {density.sum():.1f}, zones {zones.counts(density)}")


if __name__ == "__main__":
    main()
