"""Losses on the point annotations themselves (rather than on a density map made from them).

The Bayesian loss (Ma, Wei, Hong and Gong, "Bayesian Loss for Crowd Count Estimation with Point
Supervision", ICCV 2019) needs no density kernel: each pixel's predicted density is shared among
the annotated points by the posterior probability that it belongs to each (a Gaussian
likelihood around every point), and each point's expected count, the sum of its shares, should
be 1. With a background (their "Bayesian+"), pixels far from every point belong mostly to a
background whose expected count should be 0, so the density there is pushed down too.
"""

from __future__ import annotations

from typing import Any


def block_centres(h: int, w: int, stride: int) -> Any:
    """Pixel coordinates ``(h * w) x 2`` (x, y) of the centres of ``stride`` x ``stride`` blocks,
    pixel centres at integers (the convention of the prepared points).

    Example:
        >>> block_centres(1, 2, 4).tolist()
        [[1.5, 1.5], [5.5, 1.5]]
    """
    import torch

    ys = torch.arange(h, dtype=torch.float32) * stride + (stride - 1) / 2.0
    xs = torch.arange(w, dtype=torch.float32) * stride + (stride - 1) / 2.0
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def bayesian_loss(counts: Any, points: list[Any], stride: int, sigma: float,
                  background: float) -> Any:
    """The Bayesian loss of a batch: mean over images of ``sum |target - expected count|``.

    Args:
        counts: ``N x 1 x h x w`` predicted counts per ``stride`` x ``stride`` block (not
            scaled by the density scale).
        points: ``N`` tensors ``K_i x 2`` (x, y) in the patch's pixels.
        stride: Side of a block in pixels.
        sigma: Standard deviation in pixels of the Gaussian likelihood around a point.
        background: 0 for the plain Bayesian loss; above 0 adds the background, whose distance
            from a pixel is ``(background * S)^2 / d`` in squared pixels, ``d`` the pixel's
            squared distance to its nearest point and ``S`` the patch's shorter side (as in the
            authors' code, where the factor is 1 by default).

    Returns:
        A scalar tensor. Negative predictions (the network's output is unclamped, and the
        engine sums the map as it comes, clamping only the total count at 0) count as 0 in the
        expected counts and add their size to the loss, so they are pushed up to 0 rather than
        cancel positive ones.

    Example:
        >>> import torch
        >>> counts = torch.zeros(1, 1, 2, 2)
        >>> counts[0, 0, 0, 1] = 1.0  # one person predicted in the top-right block...
        >>> pts = [torch.tensor([[5.5, 1.5]])]  # ...where one was annotated
        >>> round(float(bayesian_loss(counts, pts, 4, 2.0, 0.0)), 4)
        0.0
        >>> round(float(bayesian_loss(torch.zeros(1, 1, 2, 2), pts, 4, 2.0, 0.0)), 4)
        1.0
    """
    import torch

    n, _, h, w = counts.shape
    centres = block_centres(h, w, stride).to(counts.device)
    side = float(min(h, w) * stride)
    total = counts.new_zeros(())
    for i in range(n):
        raw = counts[i].reshape(-1)
        dens = raw.clamp_min(0.0)
        total = total + (-raw).clamp_min(0.0).sum()
        pts = points[i].to(counts.device, torch.float32).reshape(-1, 2)
        if len(pts) == 0:  # nobody here: the whole patch should count 0
            total = total + dens.sum().abs()
            continue
        d2 = torch.cdist(pts, centres).square()  # K x M
        if background > 0:
            nearest = d2.min(dim=0, keepdim=True).values
            d2 = torch.cat([d2, (background * side) ** 2 / (nearest + 1e-5)], dim=0)
        post = torch.softmax(-d2 / (2.0 * sigma * sigma), dim=0)  # who each block belongs to
        expected = post @ dens
        target = torch.ones_like(expected)
        if background > 0:
            target[-1] = 0.0
        total = total + (target - expected).abs().sum()
    return total / max(n, 1)
