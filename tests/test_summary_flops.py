"""FLOPs, receptive fields, kernel column and training-only rows of minidl.summary; the output-size
helpers of minidl.nn.utils; one auxiliary-loss weight per model (issue 17 point 8, issue 18 point 6).

The course's exercise (seed 004, "Exercise: reminder on layers"): a 28x28 float32 image, each layer
applied on its own, biases counted, 1 MAC = 2 FLOPs: FC-256, conv 256 3x3 (stride 1, no padding),
max-pool 2x2 stride 2.
"""
import numpy as np
import pytest

import minidl
from minidl import models, nn, optim
from minidl.cli import main
from minidl.nn.utils import conv_output_size, pool_output_size
from minidl.train import Trainer


def test_course_exercise_fc_conv_pool_on_28x28():
    fc = minidl.summary(nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 256)), (28, 28))["1"]
    assert (fc.params, fc.output_shape, fc.output_bytes, fc.flops) == (200_960, [1, 256], 1_024, 401_664)
    assert fc.flops == 2 * 784 * 256 + 256  # 2 x MACs + one bias addition per output

    conv = minidl.summary(nn.Conv2d(1, 256, 3), (1, 28, 28))
    assert conv.total_params == 2_560 and conv.total_flops == 3_288_064
    assert conv_output_size(28, 3) == 26 and 256 * 26 * 26 * (2 * 9 + 1) == 3_288_064
    assert conv.activation_bytes == 0  # the model itself has no leaf row; its output is 256 x 26 x 26 floats
    pool = minidl.summary(nn.Sequential(nn.MaxPool2d(2, 2)), (1, 28, 28))["0"]
    assert (pool.params, pool.output_shape, pool.output_bytes) == (0, [1, 1, 14, 14], 14 * 14 * 4)
    assert pool.flops == 14 * 14 * 3  # 3 comparisons pick the largest of 4
    perceptron = minidl.summary(nn.Linear(3, 1), (3,))
    assert perceptron.total_flops == 7 and perceptron.total_macs == 3  # the slide's example


def test_lenet5_flops_by_hand_and_the_cli_footer(capsys):
    s = minidl.summary(models.lenet5(), (1, 32, 32), flops=True)
    by_hand = [2 * 117_600 + 6 * 28 * 28, 6 * 14 * 14 * 3, 2 * 240_000 + 16 * 10 * 10, 16 * 5 * 5 * 3,
               2 * 48_000 + 120, 2 * 10_080 + 84, 2 * 840 + 10]
    assert [r.flops for r in s.rows] == by_hand and s.total_flops == sum(by_hand) == 844_286
    assert [(r.rf, r.jump) for r in s.rows[:4]] == [((5, 5), (1, 1)), ((6, 6), (2, 2)), ((14, 14), (2, 2)),
                                                    ((16, 16), (4, 4))]
    assert s.rows[4].rf is None  # after the flatten: no spatial field
    assert main(["summary", "lenet5", "--flops"]) == 0
    out = capsys.readouterr().out
    assert "Total FLOPs: 844,286" in out and "2 x MACs + bias additions" in out and "RF (size/jump)" in out
    assert "16/4" in out and "torchinfo" in out
    assert "FLOPs" not in str(minidl.summary(models.lenet5(), (1, 32, 32)))  # off by default


def test_activation_and_adaptive_pool_flops():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d((2, 2)))
    s = minidl.summary(net, (1, 5, 5))
    conv, relu, pool = s.rows
    assert conv.flops == 2 * 18 * 9 and relu.flops == 18
    assert pool.flops == 2 * 4 * 4  # 3 -> 2 per side: windows [0, 2) and [1, 3), 4 reads per output
    assert pool.rf == (4, 4) and pool.jump == (1, 1)  # acts as a 2x2 window of stride 1 on a 3/1 field
    net[2] = nn.AdaptiveMaxPool2d((2, 2))
    assert minidl.summary(net, (1, 5, 5)).rows[2].flops == 2 * (16 - 4)  # 3 comparisons per output


class _TwoBranches(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 1, 3, padding=1)
        self.b = nn.Conv2d(1, 1, 5, padding=2, dilation=1)
        self.after = nn.Conv2d(2, 1, 3, padding=1)

    def forward(self, x):
        return self.after(minidl.cat([self.a(x), self.b(x)], dim=1))


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=2, dilation=2)

    def forward(self, x):
        return x + self.c2(self.c1(x))


def test_receptive_field_at_branches_takes_the_largest():
    s = minidl.summary(nn.Sequential(nn.Conv2d(1, 1, 3, stride=2), _TwoBranches()), (1, 17, 17), flops=True)
    assert s["1.a"].rf == (3 + 2 * 2,) * 2 and s["1.b"].rf == (3 + 4 * 2,) * 2
    assert s["1.after"].rf == (11 + 2 * 2,) * 2  # after the concatenation: the 5x5 branch's 11, then a 3x3
    assert s["1"].rf == (15, 15) and s["1"].jump == (2, 2)
    r = minidl.summary(_Residual(), (1, 9, 9))
    assert r["c2"].rf == (7, 7)  # 3x3, then 3x3 dilated by 2 (a 5x5 span)
    text = str(minidl.summary(nn.Sequential(_Residual(), nn.MaxPool2d(3, 2)), (1, 9, 9), flops=True))
    assert "9/2" in text  # the pool after the residual sum sees the main path's 7 + 2


def test_kernel_column_shows_groups_and_strides():
    net = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), nn.Conv2d(8, 16, 1, groups=4),
                        nn.Conv2d(16, 16, (1, 7), padding=(0, 3)), nn.MaxPool2d(2, 2))
    s = minidl.summary(net, (8, 8, 8))
    assert [r.kernel for r in s.rows] == ["3x3 s2 dw", "1x1 g4", "1x7", "2x2 s2"]
    assert "3x3 s2 dw" in str(s)


def test_training_only_rows_make_the_parameter_column_add_up(zero_init):
    net = models.googlenet(num_classes=5)
    s = minidl.summary(net, (3, 32, 32), depth=1)
    aux = [r for r in s.rows if r.note]
    assert [r.name for r in aux] == ["aux1", "aux2"] and all(r.note == "training only" for r in aux)
    assert sum(r.params for r in s.rows) == s.total_params
    assert s.training_only_params == net.aux1.num_parameters() + net.aux2.num_parameters()
    names = [r.name for r in s.rows]
    assert names.index("aux1") == names.index("inception5b") + 1  # where the model registers it
    assert "Training-only params" in str(s) and "training only" in str(s)


def test_inception_v3_aux_head_row(zero_init):
    s = minidl.summary(models.inception_v3(), (3, 75, 75), depth=1)
    assert s["AuxLogits"].note == "training only" and s.training_only_params == 3_326_696
    assert sum(r.params for r in s.rows) == s.total_params == 27_161_264


@pytest.mark.parametrize("n,k,s,p,d,ceil", [(28, 3, 1, 0, 1, False), (224, 7, 2, 3, 1, False), (112, 3, 2, 1, 1, True),
                                            (13, 3, 2, 0, 1, True), (17, 3, 1, 2, 2, False), (5, 2, 2, 0, 1, True)])
def test_output_size_helpers_match_the_layers(n, k, s, p, d, ceil):
    x = minidl.zeros(1, 1, n, n + 1)
    conv = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)(x)
    assert tuple(conv.shape[2:]) == conv_output_size((n, n + 1), k, stride=s, padding=p, dilation=d)
    if 2 * p <= k:
        pool = nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=ceil)(x)
        assert tuple(pool.shape[2:]) == pool_output_size((n, n + 1), k, s, p, d, ceil_mode=ceil)


def test_output_size_helpers_against_torch():
    torch = pytest.importorskip("torch")
    for n, k, s, p, d, ceil in [(28, 2, None, 0, 1, False), (112, 3, 2, 1, 1, True), (14, 3, 2, 1, 1, True),
                                (10, 3, 3, 1, 2, True)]:
        ref = torch.nn.functional.max_pool2d(torch.zeros(1, 1, n, n), k, s, p, d, ceil_mode=ceil).shape[-1]
        assert pool_output_size(n, k, s, p, d, ceil_mode=ceil) == ref
    ref = torch.nn.functional.conv2d(torch.zeros(1, 1, 9, 20), torch.zeros(1, 1, 3, 5), stride=(2, 3),
                                     padding=(1, 2), dilation=(2, 1)).shape[2:]
    assert conv_output_size((9, 20), (3, 5), (2, 3), (1, 2), (2, 1)) == tuple(ref)
    assert conv_output_size((9, 20), 3, padding="same") == (9, 20)
    with pytest.raises(ValueError, match="does not fit"):
        conv_output_size(2, 5)
    with pytest.raises(ValueError, match="stride 1"):
        conv_output_size(8, 3, stride=2, padding="same")


def test_one_aux_weight_per_model_used_by_loss_helper_and_trainer(zero_init):
    googlenet_loss, inception_v3_loss, InceptionOutputs = \
        models.googlenet_loss, models.inception_v3_loss, models.InceptionOutputs
    inception, googlenet = models.inception_v3(num_classes=4), models.googlenet(num_classes=4)
    assert Trainer(inception, optim.SGD(inception.parameters(), lr=0.1), progress=False).aux_weight == 0.4
    assert Trainer(googlenet, optim.SGD(googlenet.parameters(), lr=0.1), progress=False).aux_weight == 0.3
    assert Trainer(models.lenet5(), optim.SGD(models.lenet5().parameters(), lr=0.1), progress=False).aux_weight == 0.3
    rng = np.random.default_rng(0)
    logits, aux = minidl.tensor(rng.standard_normal((3, 4)).astype(np.float32)), \
        minidl.tensor(rng.standard_normal((3, 4)).astype(np.float32))
    target = minidl.tensor(np.array([0, 2, 3]))
    trainer = Trainer(inception, optim.SGD(inception.parameters(), lr=0.1), progress=False)
    total, _ = trainer._loss(InceptionOutputs(logits, aux), target)
    main_ce = minidl.nn.functional.cross_entropy(logits, target).item()
    aux_ce = minidl.nn.functional.cross_entropy(aux, target).item()
    assert total.item() == pytest.approx(main_ce + 0.4 * aux_ce, rel=1e-6)
    assert inception_v3_loss(InceptionOutputs(logits, aux), target).item() == pytest.approx(total.item(), rel=1e-6)
    assert googlenet_loss(logits, target).item() == pytest.approx(main_ce, rel=1e-6)
