"""Architectures: any input size in, same size out; registry."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from streamcount.errors import InputError  # noqa: E402
from streamcount.training.models import available, build_model  # noqa: E402


@pytest.mark.parametrize("name,kwargs", [("unet", {"filters": 8}),
                                         ("unet", {"filters": 4, "growth": 2}),
                                         ("unet", {"filters": 4, "norm": "none"}),
                                         ("fcrn_a", {"n_convs": 1}),
                                         ("ensemble", {"members": 2, "member": {
                                             "architecture": "unet", "filters": 4,
                                             "n_convs": 1}})])
@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (2, 3, 37, 53), (1, 3, 8, 9), (1, 1, 30, 30)])
def test_output_size_equals_input_size(name: str, kwargs: dict, shape: tuple) -> None:
    net = build_model(name, in_channels=shape[1], **kwargs).eval()
    with torch.no_grad():
        y = net(torch.zeros(*shape))
    assert y.shape == (shape[0], 1, shape[2], shape[3])


def test_registry_lists_builtin_and_rejects_unknown() -> None:
    assert {"unet", "fcrn_a"} <= set(available())
    with pytest.raises(InputError, match="unknown architecture"):
        build_model("resnet")


def test_fcrn_channel_plan() -> None:
    net = build_model("fcrn_a", n_convs=1)
    convs = [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [32, 64, 128, 512, 128, 64, 32, 1]


def test_unet_growth_channel_plan() -> None:
    net = build_model("unet", filters=4, n_convs=1, growth=2)
    convs = [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [4, 8, 16, 32, 16, 8, 4, 1]
    assert net.config["growth"] == 2 and "growth" not in build_model("unet", filters=4).config


def test_unet_without_norm_has_no_batch_statistics() -> None:
    """``norm="none"``: biased convs, no BatchNorm, so a frame's count ignores its batch-mates."""
    torch.manual_seed(0)
    net = build_model("unet", filters=4, n_convs=1, norm="none").train()
    assert not [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.bias is not None for c in convs)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():  # in training mode, where BatchNorm would mix the two frames
        assert torch.allclose(net(x)[:1], net(x[:1]), atol=1e-6)
    assert net.config["norm"] == "none" and "norm" not in build_model("unet", filters=4).config
    assert build_model("unet", **{k: v for k, v in net.config.items()
                                  if k != "architecture"}).config == net.config


def test_unet_rejects_unknown_norm() -> None:
    with pytest.raises(InputError, match="norm must be 'bn' or 'none'"):
        build_model("unet", filters=4, norm="group")


@pytest.mark.parametrize("kwargs, needle", [
    ({"members": 1}, "2 or more"),
    ({"member": {"architecture": "ensemble", "members": 2}}, "cannot be ensembles"),
    ({"member": "not a dict"}, "not an architecture config"),
    ({"member": {"architecture": "unet", "filters": 4, "in_channels": 1}}, "in_channels"),
])
def test_ensemble_rejects_bad_settings(kwargs: dict, needle: str) -> None:
    args = {"member": {"architecture": "unet", "filters": 4}, "members": 2, **kwargs}
    with pytest.raises(InputError, match=needle):
        build_model("ensemble", **args)


def test_ensemble_output_is_the_mean_of_its_members() -> None:
    torch.manual_seed(0)
    net = build_model("ensemble", members=3, member={"architecture": "unet", "filters": 4,
                                                     "n_convs": 1}).eval()
    x = torch.randn(2, 3, 24, 40)
    with torch.no_grad():
        expected = sum(m(x) for m in net.nets) / 3
        torch.testing.assert_close(net(x), expected)
