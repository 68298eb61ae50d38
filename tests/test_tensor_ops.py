"""The tail's fast reductions and blur compute what the slow forms did (realtime.dream.tensor_ops)."""

import pytest
import torch
import torch.nn.functional as F

from realtime.dream.tensor_ops import box_mean, channel_stats, spread


@pytest.mark.parametrize("shape", [(1, 3, 180, 320), (1, 3, 5, 7), (1, 1, 2, 2)])
def test_channel_stats_are_torchs_mean_and_std(shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1)) * 0.3 + 0.5
    mean, std = channel_stats(x)
    torch.testing.assert_close(mean, x.mean((2, 3), keepdim=True))
    torch.testing.assert_close(std, x.std((2, 3), keepdim=True))
    torch.testing.assert_close(spread(x), x.std())


def test_a_non_finite_dream_stays_non_finite():
    """The fault check (realtime.dream.health) relies on a NaN reaching its figures."""
    x = torch.rand(1, 3, 8, 8)
    x[0, 1, 2, 3] = float("nan")
    assert torch.isnan(spread(x)) and torch.isnan(channel_stats(x)[1][0, 1]).all()


@pytest.mark.parametrize(("height", "width", "size"), [(180, 320, 7), (9, 5, 7), (3, 3, 7), (40, 30, 3)])
def test_box_mean_is_avg_pool_without_the_padding_counted(height, width, size):
    x = torch.rand(1, 1, height, width, generator=torch.Generator().manual_seed(2))
    expected = F.avg_pool2d(x, size, stride=1, padding=size // 2, count_include_pad=False)
    torch.testing.assert_close(box_mean(x, size), expected)
    strided = x.transpose(-1, -2).contiguous().transpose(-1, -2)  # the same values, not contiguous
    torch.testing.assert_close(box_mean(strided, size), expected)
