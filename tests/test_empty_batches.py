"""A batch of 0 samples goes through every op and gives PyTorch's empty outputs and gradients."""
import numpy as np
import pytest

import minidl
import minidl.nn as nn
import minidl.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RNG = np.random.default_rng(0)
W_CONV = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
W_DW = RNG.standard_normal((6, 1, 3, 3)).astype(np.float32)
W_PW = RNG.standard_normal((5, 3, 1, 1)).astype(np.float32)
B4 = RNG.standard_normal(4).astype(np.float32)
W_LIN = RNG.standard_normal((3, 5)).astype(np.float32)
B3 = RNG.standard_normal(3).astype(np.float32)
RM, RV = RNG.standard_normal(3).astype(np.float32), RNG.random(3).astype(np.float32) + 0.5
GAMMA, BETA = RNG.standard_normal(3).astype(np.float32), RNG.standard_normal(3).astype(np.float32)

# name: (input shape, minidl op, torch op, parameters the op takes as tensors)
CASES = {
    "conv2d_gemm": ((0, 3, 8, 8), lambda x, p: F.conv2d(x, *p, stride=2, padding=1),
                    lambda x, p: TF.conv2d(x, *p, stride=2, padding=1), [W_CONV, B4]),
    "conv2d_depthwise": ((0, 3, 8, 8), lambda x, p: F.conv2d(x, *p, padding=1, groups=3),
                         lambda x, p: TF.conv2d(x, *p, padding=1, groups=3), [W_DW]),
    "conv2d_pointwise": ((0, 3, 8, 8), lambda x, p: F.conv2d(x, *p), lambda x, p: TF.conv2d(x, *p), [W_PW]),
    "max_pool2d": ((0, 3, 8, 8), lambda x, p: F.max_pool2d(x, 3, 2, 1), lambda x, p: TF.max_pool2d(x, 3, 2, 1), []),
    "avg_pool2d": ((0, 3, 8, 8), lambda x, p: F.avg_pool2d(x, 2), lambda x, p: TF.avg_pool2d(x, 2), []),
    "adaptive_avg_pool2d": ((0, 3, 8, 8), lambda x, p: F.adaptive_avg_pool2d(x, (3, 2)),
                            lambda x, p: TF.adaptive_avg_pool2d(x, (3, 2)), []),
    "global_avg_pool2d": ((0, 3, 8, 8), lambda x, p: F.adaptive_avg_pool2d(x, 1),
                          lambda x, p: TF.adaptive_avg_pool2d(x, 1), []),
    "adaptive_max_pool2d": ((0, 3, 8, 8), lambda x, p: F.adaptive_max_pool2d(x, (3, 2)),
                            lambda x, p: TF.adaptive_max_pool2d(x, (3, 2)), []),
    "batch_norm_eval_4d": ((0, 3, 5, 5),
                           lambda x, p: F.batch_norm(x, minidl.tensor(RM), minidl.tensor(RV), *p, training=False),
                           lambda x, p: TF.batch_norm(x, torch.tensor(RM), torch.tensor(RV), *p, training=False),
                           [GAMMA, BETA]),
    "batch_norm_eval_2d": ((0, 3),
                           lambda x, p: F.batch_norm(x, minidl.tensor(RM), minidl.tensor(RV), *p, training=False),
                           lambda x, p: TF.batch_norm(x, torch.tensor(RM), torch.tensor(RV), *p, training=False),
                           [GAMMA, BETA]),
    "linear": ((0, 5), lambda x, p: F.linear(x, *p), lambda x, p: TF.linear(x, *p), [W_LIN, B3]),
    "relu": ((0, 3, 4, 4), lambda x, p: F.relu(x), lambda x, p: TF.relu(x), []),
    "softmax": ((0, 5), lambda x, p: F.softmax(x, dim=1), lambda x, p: TF.softmax(x, dim=1), []),
    "cross_entropy_none": ((0, 5), lambda x, p: F.cross_entropy(x, minidl.tensor(np.zeros(0, np.int64)), reduction="none"),
                           lambda x, p: TF.cross_entropy(x, torch.zeros(0, dtype=torch.int64), reduction="none"), []),
    "cross_entropy_sum": ((0, 5), lambda x, p: F.cross_entropy(x, minidl.tensor(np.zeros(0, np.int64)), reduction="sum"),
                          lambda x, p: TF.cross_entropy(x, torch.zeros(0, dtype=torch.int64), reduction="sum"), []),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_on_an_empty_batch_matches_torch_forward_and_backward(name):
    shape, ours_op, theirs_op, params = CASES[name]
    x = minidl.zeros(*shape, requires_grad=True)
    ps = [minidl.tensor(p, requires_grad=True) for p in params]
    y = ours_op(x, ps)
    tx = torch.zeros(shape, requires_grad=True)
    tps = [torch.tensor(p, requires_grad=True) for p in params]
    ty = theirs_op(tx, tps)
    assert tuple(y.shape) == tuple(ty.shape), name
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    (y * 1.0).sum().backward()
    (ty * 1.0).sum().backward()
    assert tuple(x.grad.shape) == shape
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    for p, tp in zip(ps, tps):
        assert p.grad is not None and p.grad.shape == tp.grad.shape, name
        np.testing.assert_array_equal(p.grad.numpy(), tp.grad.numpy())


def test_cross_entropy_mean_of_an_empty_batch_is_nan_as_in_torch_without_a_warning():
    import warnings

    x = minidl.zeros(0, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = F.cross_entropy(x, minidl.tensor(np.zeros(0, np.int64)))
    want = TF.cross_entropy(torch.zeros(0, 5), torch.zeros(0, dtype=torch.int64))
    assert np.isnan(loss.item()) and np.isnan(want.item())


def test_a_small_cnn_in_eval_mode_maps_an_empty_batch_to_empty_logits():
    features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 8, 3, groups=8, padding=1), nn.AdaptiveAvgPool2d(1))
    head = nn.Sequential(nn.Flatten(), nn.Linear(8, 10))
    model = nn.Sequential(features, head)
    model.eval()
    pooled = features(minidl.zeros(0, 3, 16, 16))
    assert tuple(pooled.shape) == (0, 8, 1, 1)
    logits = head(pooled)  # Flatten of an empty batch: (0, 8, 1, 1) -> (0, 8)
    assert tuple(logits.shape) == (0, 10)
    loss = F.cross_entropy(logits, minidl.tensor(np.zeros(0, np.int64)), reduction="sum")
    loss.backward()
    assert loss.item() == 0.0
    for p in model.parameters():
        assert p.grad is not None and not np.any(p.grad.numpy())
