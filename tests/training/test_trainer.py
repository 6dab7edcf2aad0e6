"""The trainer learns, resumes exactly, writes atomic checkpoints; evaluate reports metrics."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from streamcount.training.checkpoint import load_checkpoint  # noqa: E402
from streamcount.training.config import TrainConfig  # noqa: E402
from streamcount.training.data import AugmentConfig  # noqa: E402
from streamcount.training.trainer import Trainer  # noqa: E402


def _cfg(data: Path, out: Path, epochs: int) -> TrainConfig:
    return TrainConfig(
        data=str(data), out=str(out), filters=8, epochs=epochs, samples_per_epoch=96,
        batch_size=8, patch=32, lr=5e-3, seed=1, name="blobs", threads=2, ema_decay=0.9,
        aug=AugmentConfig(hflip=True, vflip=True),
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(blob_dataset: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("run")
    result = Trainer(_cfg(blob_dataset, out, epochs=12), progress=False).fit()
    return result, out


def test_training_beats_predict_the_mean(trained) -> None:
    result, _ = trained
    assert result.best_val["mae"] < 0.5 * result.baseline_mae


def test_checkpoint_is_weights_only_with_plain_config(trained) -> None:
    _, out = trained
    state = load_checkpoint(out / "best.pt")  # torch.load(weights_only=True) inside
    cfg = state["config"]
    assert cfg["model"]["architecture"] == "unet" and cfg["model"]["filters"] == 8
    assert cfg["density_scale"] == 100.0 and len(cfg["mean"]) == 3
    json.dumps(cfg)  # plain types only
    assert not list(out.glob("*.tmp"))
    log = (out / "log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,train_loss,val_mae") and len(log) == 13


def test_validation_is_fp32_whatever_the_training_precision(blob_dataset: Path,
                                                           tmp_path: Path) -> None:
    """A bf16-trained model is validated as it ships (fp32): evaluate gives the same figures."""
    from streamcount.training.evaluate import evaluate_checkpoint

    cfg = replace(_cfg(blob_dataset, tmp_path, epochs=2), precision="bf16")
    result = Trainer(cfg, progress=False).fit()
    ev = evaluate_checkpoint(tmp_path / "best.pt", blob_dataset / "val.h5", game_levels=0,
                             progress=False)
    assert result.best_val["mae"] == pytest.approx(ev.metrics["mae"], rel=1e-5, abs=1e-6)
    assert result.best_val["bias"] == pytest.approx(ev.metrics["bias"], rel=1e-5, abs=1e-6)


def test_resume_continues_exactly(blob_dataset: Path, tmp_path: Path) -> None:
    full = Trainer(_cfg(blob_dataset, tmp_path / "a", epochs=3), progress=False)
    full.fit()
    part = _cfg(blob_dataset, tmp_path / "b", epochs=3)
    # Train 2 of 3 epochs: same schedule length, stopped early by editing epochs afterwards.
    t = Trainer(part, progress=False)
    t._setup()
    t.run_dir.mkdir(parents=True, exist_ok=True)
    (t.run_dir / "log.csv").write_text("epoch\n")
    from rich.progress import Progress

    from streamcount.training.checkpoint import save_checkpoint

    with Progress(disable=True) as p:
        task = p.add_task("x", total=100)
        for epoch in range(2):
            t._train_epoch(epoch, p, task)
            save_checkpoint(t._state(epoch, {}, full=True), t.run_dir / "last.pt")
    Trainer(part, resume=True, progress=False).fit()
    a = load_checkpoint(tmp_path / "a" / "last.pt")["raw_model"]
    b = load_checkpoint(tmp_path / "b" / "last.pt")["raw_model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_without_checkpoint_is_one_clear_error(blob_dataset: Path, tmp_path: Path) -> None:
    from streamcount.errors import InputError

    with pytest.raises(InputError, match=r"no .*last\.pt"):
        Trainer(_cfg(blob_dataset, tmp_path, 1), resume=True, progress=False).fit()


def test_evaluate_reports_metrics_and_plot(trained, blob_dataset: Path, tmp_path: Path) -> None:
    from streamcount.training.evaluate import evaluate_checkpoint, plot_evaluation

    _, out = trained
    ev = evaluate_checkpoint(out / "best.pt", blob_dataset / "val.h5", progress=False)
    assert ev.metrics["n"] == 8
    assert ev.metrics["game0"] == pytest.approx(ev.metrics["mae"], rel=1e-4)
    assert ev.metrics["game3"] >= ev.metrics["game0"]
    assert np.isfinite([ev.metrics[k] for k in ("mae", "rmse", "bias")]).all()
    plot_evaluation(ev, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000


@pytest.mark.parametrize("views", [2, 4, 8])
def test_evaluate_views_average_the_flipped_images(trained, blob_dataset: Path,
                                                   views: int) -> None:
    """``--views N``: each image's count is the mean of the model's counts of its N views."""
    from streamcount.training.checkpoint import effective_density_scale, model_from_checkpoint
    from streamcount.training.data import normalize_image
    from streamcount.training.evaluate import VIEW_SETS, evaluate_checkpoint, view
    from streamcount.training.splits_io import load_split

    _, out = trained
    ev = evaluate_checkpoint(out / "best.pt", blob_dataset / "val.h5", game_levels=0,
                             progress=False, views=views)
    one = evaluate_checkpoint(out / "best.pt", blob_dataset / "val.h5", game_levels=0,
                              progress=False)
    model, cfg = model_from_checkpoint(out / "best.pt")
    scale = effective_density_scale(cfg)

    def tensor(img: np.ndarray):
        return torch.from_numpy(normalize_image(img, np.asarray(cfg["mean"], np.float32),
                                                np.asarray(cfg["std"], np.float32)))

    first = load_split(blob_dataset / "val.h5").images[0]
    with torch.no_grad():
        counts = [float(model(view(tensor(first), v)).sum()) / scale for v in VIEW_SETS[views]]
        x = tensor(first[5:, :-3])  # not square: the transposed views change the shape
        mapped = [view(model(view(x, v)), v, inverse=True) for v in VIEW_SETS[views]]
    assert ev.pred[0] == pytest.approx(np.mean(counts), rel=1e-5)
    assert all(m.shape == (1, 1, *x.shape[-2:]) for m in mapped)  # back on the image grid
    assert ev.pred != one.pred  # the views count differently, so the option does something
    assert ev.metrics["n"] == one.metrics["n"]


def test_evaluate_rejects_unknown_views(trained, blob_dataset: Path) -> None:
    from streamcount.errors import InputError
    from streamcount.training.evaluate import evaluate_checkpoint

    with pytest.raises(InputError, match="--views must be one of 1, 2, 4, 8"):
        evaluate_checkpoint(trained[1] / "best.pt", blob_dataset / "val.h5", views=3)


def test_count_loss_term_changes_the_training(blob_dataset: Path, tmp_path: Path) -> None:
    base = replace(_cfg(blob_dataset, tmp_path / "a", epochs=1), samples_per_epoch=16,
                   filters=4)
    Trainer(base, progress=False).fit()
    Trainer(replace(base, out=str(tmp_path / "b"), count_loss=1.0), progress=False).fit()
    a = load_checkpoint(tmp_path / "a" / "last.pt")["raw_model"]
    b = load_checkpoint(tmp_path / "b" / "last.pt")["raw_model"]
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
    assert TrainConfig.from_dict(replace(base, count_loss=0.5).to_dict()).count_loss == 0.5


@pytest.mark.parametrize(("clip", "clipped"), [(1e-3, "all"), (1e9, "none")])
def test_grad_clip_counts_and_changes_the_steps(blob_dataset: Path, tmp_path: Path, clip: float,
                                                clipped: str) -> None:
    base = replace(_cfg(blob_dataset, tmp_path / "a", epochs=1), samples_per_epoch=16,
                   filters=4, optimizer="sgd", ema_decay=0.0)
    Trainer(base, progress=False).fit()
    t = Trainer(replace(base, out=str(tmp_path / "b"), grad_clip=clip), progress=False)
    t.fit()
    assert t.clipped == (t.steps_per_epoch if clipped == "all" else 0)
    a = load_checkpoint(tmp_path / "a" / "last.pt")["raw_model"]
    b = load_checkpoint(tmp_path / "b" / "last.pt")["raw_model"]
    same = all(torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
    assert same == (clipped == "none")  # SGD: clipped gradients take smaller steps


def test_recipe_round_trip(tmp_path: Path) -> None:
    cfg = TrainConfig(data="d", epochs=3, aug=AugmentConfig(vflip=True, scale_jitter=0.1))
    text = "\n".join(f"{k} = {json.dumps(v)}" for k, v in cfg.to_dict().items() if k != "aug")
    text += "\n[aug]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in cfg.aug.__dict__.items())
    (tmp_path / "r.toml").write_text(text)
    assert TrainConfig.from_toml(tmp_path / "r.toml") == cfg
    assert replace(cfg, epochs=4) != cfg


def test_checkpoint_loading_refuses_garbage_and_pickled_objects(tmp_path: Path) -> None:
    from streamcount.errors import ModelError
    from streamcount.training.checkpoint import load_checkpoint

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\xff\xd8\xff\xe0 this is a jpeg")
    with pytest.raises(ModelError, match="not a torch checkpoint file"):
        load_checkpoint(junk)

    import argparse

    evil = tmp_path / "evil.pt"  # any non-allow-listed object would run code on unpickling
    torch.save({"model": {}, "config": {}, "obj": argparse.Namespace(x=1)}, evil)
    with pytest.raises(ModelError, match="refused for safety"):
        load_checkpoint(evil)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ModelError, match="not a streamcount checkpoint"):
        load_checkpoint(other)


def test_checkpoint_not_matching_its_architecture(trained, tmp_path: Path) -> None:
    from streamcount.errors import ModelError
    from streamcount.training.checkpoint import model_from_checkpoint

    _, out = trained
    state = load_checkpoint(out / "best.pt")
    state["config"]["model"]["filters"] = 16
    torch.save(state, tmp_path / "wrong.pt")
    with pytest.raises(ModelError, match="do not match architecture"):
        model_from_checkpoint(tmp_path / "wrong.pt")


def test_calibrate_removes_training_bias(trained, blob_dataset: Path, tmp_path: Path,
                                         capsys) -> None:
    from streamcount.cli import main
    from streamcount.training.evaluate import evaluate_checkpoint

    _, out = trained
    cal = tmp_path / "cal.pt"
    assert main(["calibrate", str(out / "best.pt"), "--data", str(blob_dataset),
                 "--out", str(cal), "--json"]) == 0
    gain = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["count_gain"]
    assert load_checkpoint(cal)["config"]["count_gain"] == gain
    ev = evaluate_checkpoint(cal, blob_dataset / "train.h5", game_levels=0, progress=False)
    assert abs(sum(ev.pred) - sum(ev.true)) < 1e-3 * sum(ev.true)
    assert main(["calibrate", str(cal), "--data", str(blob_dataset)]) == 2  # already calibrated


def _evaluate_json(checkpoint: Path, data: Path, capsys, *flags: str) -> dict:
    """``streamcount evaluate CHECKPOINT --data DATA --json FLAGS``, parsed as strict JSON (an
    infinity or NaN in the output fails the test)."""
    from streamcount.cli import main

    assert main(["evaluate", str(checkpoint), "--data", str(data), "--json",
                 "--game-levels", "0", *flags]) == 0

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in --json output")

    return json.loads(capsys.readouterr().out.strip().splitlines()[-1], parse_constant=refuse)


def test_evaluate_json_groups_by_true_count(trained, blob_dataset: Path, capsys) -> None:
    """``--json`` stays strict JSON with an empty group and the open-ended last one."""
    _, out = trained
    result = _evaluate_json(out / "best.pt", blob_dataset, capsys, "--count-bins", "1,1e6")
    groups = result["by_count"]
    assert [g["low"] for g in groups] == [0.0, 1.0, 1e6]
    assert groups[-1]["high"] is None and groups[-1]["n"] == 0 and groups[-1]["mae"] is None
    assert sum(g["n"] for g in groups) == result["n"]


def test_evaluate_json_groups_objects_by_nearest_neighbour(trained, blob_dataset: Path,
                                                            capsys) -> None:
    """``--neighbours`` in ``--json``: strict JSON, every annotated object in one group, and the
    groups' errors (background included) add up to the split's bias."""
    from streamcount.training.splits_io import load_split

    _, out = trained
    result = _evaluate_json(out / "best.pt", blob_dataset, capsys, "--neighbours", "3,1e6")
    rows = result["by_neighbour"]
    assert [r["low"] for r in rows] == [0.0, 3.0, 1e6, None]  # the last row: the background
    assert rows[2]["high"] is None and rows[2]["objects"] == 0 and rows[2]["predicted"] is None
    counts = load_split(blob_dataset / "val.h5").counts  # the annotated objects of each image
    assert sum(r["objects"] for r in rows) == pytest.approx(np.mean(counts))
    assert sum(r["error"] for r in rows) == pytest.approx(result["bias"], abs=1e-3)


@pytest.mark.parametrize("n", [1, 3, 1000])
def test_evaluate_worst_lists_the_largest_errors(trained, blob_dataset: Path, capsys,
                                                 n: int) -> None:
    """``--worst N`` gives the N images of largest absolute error, largest first, each with
    the figures the summary is made of."""
    from streamcount.cli import main

    _, out = trained
    assert main(["evaluate", str(out / "best.pt"), "--data", str(blob_dataset), "--json",
                 "--game-levels", "0", "--worst", str(n)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    worst = result["worst"]
    assert len(worst) == min(n, result["n"])
    errors = [abs(w["error"]) for w in worst]
    assert errors == sorted(errors, reverse=True)
    for w in worst:
        assert w["error"] == pytest.approx(w["pred"] - w["true"])
        assert w["agreement"] is None or -1.0 <= w["agreement"] <= 1.0
    if n >= result["n"]:  # every image: their mean absolute error is the MAE
        assert np.mean(errors) == pytest.approx(result["mae"], abs=1e-4)  # printed rounded
    assert main(["evaluate", str(out / "best.pt"), "--data", str(blob_dataset),
                 "--game-levels", "0", "--worst", "2"]) == 0
    assert "the 2 largest errors" in capsys.readouterr().out


def test_ctrl_c_during_training_keeps_the_last_checkpoint(blob_dataset: Path,
                                                          tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "streamcount", "train", "--data", str(blob_dataset), "--out",
           str(out), "--filters", "4", "--epochs", "100000", "--samples-per-epoch", "16",
           "--patch", "32", "--threads", "1", "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err and "--resume" in err
    state = load_checkpoint(out / "last.pt")
    assert 0 <= state["epoch"] < 99_999  # (200 epochs of this took about 1 s on a Zen 4)
    assert not list(out.glob("*.tmp"))


def test_evaluate_reports_bands_and_blocks(trained, blob_dataset: Path) -> None:
    from streamcount.training.evaluate import evaluate_checkpoint, frame_blocks

    _, out = trained
    ev = evaluate_checkpoint(out / "best.pt", blob_dataset / "val.h5", game_levels=0,
                             progress=False, bands=4, grid=3, count_edges=[2.0, 4.0])
    assert len(ev.bands) == 4
    assert [g["n"] for g in ev.by_count] == [
        sum(t < 2 for t in ev.true), sum(2 <= t < 4 for t in ev.true), sum(t >= 4 for t in ev.true)]
    assert sum(g["n"] for g in ev.by_count) == len(ev.true)
    assert sum(b["true"] for b in ev.bands) == pytest.approx(np.mean(ev.true), rel=1e-4)
    assert sum(b["pred"] for b in ev.bands) == pytest.approx(np.mean(ev.pred), rel=1e-3)
    cells = ev.grid["all"]
    assert np.array(cells["true"]).shape == (3, 3)
    assert np.sum(cells["true"]) == pytest.approx(np.mean(ev.true), rel=1e-3)
    assert np.sum(cells["bias"]) == pytest.approx(np.mean(ev.pred) - np.mean(ev.true), abs=1e-3)
    assert frame_blocks(["seq_000301", "seq_000302", "seq_000701", "seq_000702"]) == [
        ("301-302", [0, 1]), ("701-702", [2, 3])]


def _train_args(*argv: str):
    import argparse

    from streamcount.training import train_cli

    p = argparse.ArgumentParser()
    train_cli.add_arguments(p)
    return train_cli, p, p.parse_args(list(argv))


def test_every_setting_has_a_flag_with_help() -> None:
    """Flags come from the config dataclasses: a new setting is declared once, in TrainConfig."""
    from dataclasses import fields

    _, p, _ = _train_args()
    flags = {a.dest: a for a in p._actions}
    for cls in (TrainConfig, AugmentConfig):
        for f in fields(cls):
            if f.name in ("aug", "model_args"):
                continue
            assert f.name in flags, f.name
            assert flags[f.name].help, f"--{f.name} has no help (TrainConfig docstring)"


@pytest.mark.parametrize("argv,expected", [
    (["--model-arg", "encoder_depth=4"], None),  # a setting of its own: pass it as one
    (["--model-arg", "growth=2", "--arch", "unet_effl0"], None),  # not an argument of it
    (["--arch", "unet_effl0", "--encoder-depth", "4", "--decoder-norm", "none"],
     {"decoder_channels": 64, "decoder_norm": "none", "encoder_depth": 4}),
    (["--filters", "16", "--model-arg", "norm=none"],
     {"filters": 16, "n_convs": 2, "norm": "none"}),
])  # fmt: skip
def test_model_arguments_from_flags(argv: list[str], expected: dict | None) -> None:
    from streamcount.errors import InputError

    train_cli, _, args = _train_args("--data", "d", *argv)
    cfg = train_cli.config_from_args(args)
    if expected is None:
        with pytest.raises(InputError, match="model_args"):
            cfg.model_kwargs()
    else:
        assert cfg.model_kwargs() == expected


def test_model_arg_values_are_typed() -> None:
    train_cli, _, args = _train_args("--data", "d", "--model-arg", "a=3", "--model-arg",
                                     "b=0.5", "--model-arg", "c=bn", "--model-arg", "d=true")
    assert train_cli.config_from_args(args).model_args == {"a": 3, "b": 0.5, "c": "bn",
                                                           "d": True}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spatial_agreement_falls_as_the_annotations_move_away(seed: int) -> None:
    """Predicted objects on the annotated ones agree at 1; the same annotations moved by 1, 2
    and 4 blocks of 16 px agree less and less, and those of another picture (other random
    places) hardly at all."""
    import cv2

    from streamcount.training.evaluate import spatial_agreement

    rng = np.random.default_rng(seed)

    def density(pts: np.ndarray) -> np.ndarray:
        d = np.zeros((192, 192), np.float32)
        for y, x in pts:
            d[y, x] += 1.0
        return cv2.GaussianBlur(d, (0, 0), 3.0)

    pts = rng.integers(0, 120, (40, 2))
    pred = density(pts)
    got = [spatial_agreement(pred, density(pts + 16 * k)) for k in (0, 1, 2, 4)]
    assert got[0] == pytest.approx(1.0, abs=1e-6)
    assert got == sorted(got, reverse=True) and got[1] < 0.9
    assert spatial_agreement(pred, density(rng.integers(0, 192, (40, 2)))) < 0.4
    assert np.isnan(spatial_agreement(np.zeros((32, 32)), pred[:32, :32]))


@pytest.mark.parametrize("power", [0.0, 1.0, 2.0])
def test_count_weighting_draws_images_by_their_counts(blob_dataset: Path, tmp_path: Path,
                                                      power: float) -> None:
    cfg = replace(_cfg(blob_dataset, tmp_path / "run", epochs=1), samples_per_epoch=240,
                  filters=4, count_weighting=power)
    t = Trainer(cfg, progress=False)
    t._setup()
    counts = np.asarray(t.train.counts)
    if power == 0:
        assert t.sample_weights is None  # the unweighted epochs of every earlier run
        return
    want = (counts + 1) ** power / ((counts + 1) ** power).sum()
    np.testing.assert_allclose(t.sample_weights, want)
    t.dataset.set_epoch(0)
    seen = np.bincount(t.dataset.order, minlength=len(counts))
    assert np.all(np.abs(seen - want * 240) < 1)
    # denser images are drawn more: the per-image draws follow the counts' order
    assert np.corrcoef(seen, counts)[0, 1] > 0.9


@pytest.mark.parametrize("power", [-0.5, 4.5])
def test_count_weighting_out_of_range_is_refused(power: float) -> None:
    from streamcount.errors import InputError

    with pytest.raises(InputError, match="count_weighting"):
        TrainConfig(data="x", count_weighting=power)


@pytest.mark.parametrize(("loss_block", "shift", "zero"), [
    (0, 1, False),  # compared pixel by pixel (the U-Net's stride 1), a shifted blob costs
    (1, 1, False),
    (4, 1, True),   # in 4x4 block sums, a shift that stays inside its block costs nothing
    (4, 4, False),  # one that crosses into the next block does
])
def test_loss_block_compares_block_sums(blob_dataset: Path, tmp_path: Path, loss_block: int,
                                        shift: int, zero: bool) -> None:
    cfg = replace(_cfg(blob_dataset, tmp_path / "run", epochs=1), filters=4,
                  loss_block=loss_block)
    t = Trainer(cfg, progress=False)
    t._setup()
    assert t.loss_stride == (loss_block or 1)
    y = torch.zeros(1, 1, 16, 16)
    y[0, 0, 4, 4] = 100.0  # one object, scaled density
    pred = torch.roll(y, shifts=shift, dims=3)
    loss = float(t._loss(pred, y, None))
    assert (loss == 0.0) is zero
    assert float(t._loss(y, y, None)) == 0.0


@pytest.mark.parametrize("loss_block", [-1, 65])
def test_loss_block_out_of_range_is_refused(loss_block: int) -> None:
    from streamcount.errors import InputError

    with pytest.raises(InputError, match="loss_block"):
        TrainConfig(data="x", loss_block=loss_block)


def test_loss_block_must_be_a_multiple_of_the_output_stride(blob_dataset: Path,
                                                            tmp_path: Path) -> None:
    from streamcount.errors import InputError

    cfg = replace(_cfg(blob_dataset, tmp_path / "run", epochs=1), arch="unet_effl0",
                  pretrained=False, loss_block=6)
    with pytest.raises(InputError, match="loss_block = 6 is not a multiple of unet_effl0's"):
        Trainer(cfg, progress=False)._setup()
    t = Trainer(replace(cfg, loss_block=8), progress=False)
    t._setup()
    assert t.loss_stride == 8
