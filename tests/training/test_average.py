"""``streamcount average``: the mean of checkpoints' weights, refused across architectures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamcount.cli import main

torch = pytest.importorskip("torch")


def _train(blob_dataset: Path, out: Path, **overrides: object) -> Path:
    from streamcount.training.config import TrainConfig
    from streamcount.training.trainer import Trainer

    args: dict = dict(data=str(blob_dataset), out=str(out), filters=4, epochs=1,
                      samples_per_epoch=16, patch=32, name="blobs", threads=2)
    args.update(overrides)
    Trainer(TrainConfig(**args), progress=False).fit()
    return out / "best.pt"


@pytest.fixture(scope="module")
def second_checkpoint(blob_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same architecture as ``tiny_checkpoint``, another seed: other weights."""
    return _train(blob_dataset, tmp_path_factory.mktemp("seed1"), seed=1)


def test_average_is_the_mean_of_the_weights_and_evaluates(
        tiny_checkpoint: Path, second_checkpoint: Path, blob_dataset: Path,
        tmp_path: Path) -> None:
    out = tmp_path / "soup.pt"
    assert main(["average", str(tiny_checkpoint), str(second_checkpoint), "--out",
                 str(out), "--data", str(blob_dataset)]) == 0
    a = torch.load(tiny_checkpoint, weights_only=True)
    b = torch.load(second_checkpoint, weights_only=True)
    soup = torch.load(out, weights_only=True)
    differ = 0
    for key, value in a["model"].items():
        if value.is_floating_point():
            expected = (value + b["model"][key]) / 2
            torch.testing.assert_close(soup["model"][key], expected)
            differ += int(not torch.equal(value, b["model"][key]))
    assert differ > 0  # the two seeds gave different weights: the test averages something
    assert [s["path"] for s in soup["config"]["averaged_from"]] == [str(tiny_checkpoint),
                                                                     str(second_checkpoint)]
    # a normal checkpoint: evaluate and export take it
    from streamcount.exports.onnx import export_checkpoint
    from streamcount.training.evaluate import evaluate_checkpoint

    ev = evaluate_checkpoint(out, blob_dataset / "val.h5", game_levels=0, progress=False)
    assert len(ev.pred) > 0
    # --data: the soup's own figures are stored, not the first ingredient's
    assert soup["config"]["metrics"]["mae"] == pytest.approx(ev.metrics["mae"])
    assert soup["config"]["metrics"]["mae"] != pytest.approx(a["config"]["metrics"]["mae"])
    export_checkpoint(out, tmp_path / "soup.onnx", do_verify=True)


def test_average_without_data_stores_no_figures(tiny_checkpoint: Path,
                                                second_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "soup.pt"
    assert main(["average", str(tiny_checkpoint), str(second_checkpoint), "--out",
                 str(out)]) == 0
    assert "metrics" not in torch.load(out, weights_only=True)["config"]


@pytest.mark.parametrize("case, needle", [
    ("one", "two or more"),
    ("no-val-split", "no val.h5"),
    ("twice", "twice"),
    ("other-arch", "model is"),
])
def test_average_refuses_in_one_line(case: str, needle: str, tiny_checkpoint: Path,
                                     blob_dataset: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    extra: list[str] = []
    if case == "one":
        ckpts = [tiny_checkpoint]
    elif case == "no-val-split":
        ckpts = [tiny_checkpoint, tiny_checkpoint.with_name("last.pt")]
        extra = ["--data", str(tmp_path)]
    elif case == "twice":
        ckpts = [tiny_checkpoint, tiny_checkpoint]
    else:
        ckpts = [tiny_checkpoint, _train(blob_dataset, tmp_path / "wide", filters=8)]
    out = tmp_path / "soup.pt"
    rc = main(["average", *map(str, ckpts), "--out", str(out), *extra])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert rc != 0 and len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err and not out.exists()


def test_outputs_ensemble_counts_the_mean_of_its_members_through_the_engine(
        tiny_checkpoint: Path, second_checkpoint: Path, blob_dataset: Path,
        tmp_path: Path) -> None:
    """``--outputs``: both networks kept; the count is the mean of theirs, in torch and ONNX."""
    from streamcount.engine import Counter
    from streamcount.exports.onnx import export_checkpoint
    from streamcount.training.evaluate import evaluate_checkpoint

    out = tmp_path / "ensemble.pt"
    assert main(["average", str(tiny_checkpoint), str(second_checkpoint), "--outputs",
                 "--out", str(out), "--data", str(blob_dataset)]) == 0
    ens = torch.load(out, weights_only=True)
    assert ens["config"]["model"]["architecture"] == "ensemble"
    assert ens["config"]["model"]["members"] == 2
    split = blob_dataset / "val.h5"
    evs = [evaluate_checkpoint(p, split, game_levels=0, progress=False)
           for p in (tiny_checkpoint, second_checkpoint, out)]
    a, b, both = (np.asarray(ev.pred) for ev in evs)
    assert not np.allclose(a, b, rtol=1e-3)  # two different networks
    np.testing.assert_allclose(both, (a + b) / 2, rtol=1e-4, atol=1e-4)
    assert ens["config"]["metrics"]["mae"] == pytest.approx(evs[2].metrics["mae"])
    onnx_path = tmp_path / "ensemble.onnx"
    export_checkpoint(out, onnx_path, do_verify=True)
    counter = Counter(model=str(onnx_path), device="cpu")
    assert counter.metadata.architecture == "2x unet-4"
    image = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    singles = []
    for ckpt in (tiny_checkpoint, second_checkpoint):
        single = tmp_path / f"{ckpt.parent.name}.onnx"
        export_checkpoint(ckpt, single, do_verify=False)
        singles.append(Counter(model=str(single), device="cpu").count(image).count)
    assert counter.count(image).count == pytest.approx(sum(singles) / 2, rel=1e-4, abs=1e-4)


def test_outputs_refuses_an_ensemble_as_a_member(tiny_checkpoint: Path, second_checkpoint: Path,
                                                 tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    ens = tmp_path / "ensemble.pt"
    assert main(["average", str(tiny_checkpoint), str(second_checkpoint), "--outputs",
                 "--out", str(ens)]) == 0
    capsys.readouterr()
    again = tmp_path / "again.pt"
    other = tmp_path / "copy.pt"
    other.write_bytes(ens.read_bytes())
    rc = main(["average", str(ens), str(other), "--outputs", "--out", str(again)])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert rc != 0 and len(lines) == 1 and "ensemble already" in lines[0], err
    assert not again.exists()
