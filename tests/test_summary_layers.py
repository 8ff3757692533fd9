"""minidl.summary's MACs for the layers beyond the CNN, and `minidl models` over the whole zoo.

Every count is written out by hand from the convention of minidl/summary.py's docstring
(one MAC per multiply-add of a dot product, biases not counted); where torch is installed
the convolutions, recurrences and attention are also checked against
``torch.utils.flop_counter`` (2 FLOPs per MAC, fvcore's convention).
"""
import numpy as np
import pytest

import minidl
from minidl import models, nn
from minidl.cli import main
from minidl.nn import functional as F
from minidl.nn.module import Module


def macs(layer, input_size, batch_size=1, **kwargs):
    return minidl.summary(layer, input_size, batch_size=batch_size, **kwargs).total_macs


class Wrap(Module):
    """A model with one child ``layer`` (so that the layer gets a row), called as ``layer(x)``."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)


# ----------------------------------------------------------------------------- convolutions
def test_convolutions_count_output_elements_times_the_dot_product_length():
    # Conv1d: output (2, 6, 8) elements, each a dot product over 4/2 channels x 3 taps
    assert macs(nn.Conv1d(4, 6, 3, groups=2), (4, 10), batch_size=2) == 2 * 6 * 8 * 2 * 3
    # dilation and padding change the output length, not the dot product
    assert macs(nn.Conv1d(4, 6, 3, padding=2, dilation=2), (4, 10)) == 6 * 10 * 4 * 3
    # Conv3d: output (1, 5, 3, 4, 2), dot products over 2 channels x 2 x 3 x 3
    assert macs(nn.Conv3d(2, 5, (2, 3, 3)), (2, 4, 6, 4)) == 5 * 3 * 4 * 2 * 2 * 2 * 3 * 3
    # as a child row too, the same figure
    s = minidl.summary(Wrap(nn.Conv3d(2, 5, (2, 3, 3), stride=2)), (2, 4, 6, 4))
    assert s["layer"].macs == s.total_macs == 5 * 2 * 2 * 1 * 2 * 2 * 3 * 3


def test_transposed_convolutions_count_input_elements_times_the_kernels_they_feed():
    # every input element is multiplied into out/groups kernels of the kernel's volume
    assert macs(nn.ConvTranspose1d(4, 6, 3, stride=2), (4, 5), batch_size=3) == 3 * 4 * 5 * 6 * 3
    assert macs(nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2), (4, 5, 5), batch_size=2) == 2 * 4 * 25 * 3 * 9
    assert macs(nn.ConvTranspose3d(2, 3, (2, 2, 3), stride=(1, 2, 2), padding=1), (2, 3, 4, 4)) == \
        2 * 3 * 4 * 4 * 3 * 2 * 2 * 3
    # not torchinfo's weight size x output positions, which is stride**2 (here ~4x) too many
    s = minidl.summary(Wrap(nn.ConvTranspose2d(4, 6, 3, stride=2)), (4, 5, 5))
    assert s["layer"].output_shape == [1, 6, 11, 11]
    assert s.total_macs == 4 * 25 * 6 * 9 != (4 * 6 * 9) * (11 * 11)


def test_convolution_counts_agree_with_torch_flop_counter():
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    cases = [
        (nn.Conv1d(4, 6, 3, groups=2), torch.nn.Conv1d(4, 6, 3, groups=2), (4, 10)),
        (nn.Conv3d(2, 4, 3, padding=1), torch.nn.Conv3d(2, 4, 3, padding=1), (2, 3, 4, 5)),
        (nn.ConvTranspose1d(4, 6, 3, stride=3), torch.nn.ConvTranspose1d(4, 6, 3, stride=3), (4, 7)),
        (nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2), torch.nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2),
         (4, 5, 5)),
        (nn.ConvTranspose3d(2, 4, 2, stride=2), torch.nn.ConvTranspose3d(2, 4, 2, stride=2), (2, 3, 3, 3)),
    ]
    for ours, theirs, size in cases:
        with FlopCounterMode(display=False) as counter:
            theirs(torch.zeros((2,) + size))
        assert macs(ours, size, batch_size=2) == counter.get_total_flops() // 2, type(ours).__name__


# ----------------------------------------------------------------------------- recurrences
def test_recurrent_layers_count_both_products_every_step_layer_and_direction():
    steps, batch, features, hidden = 7, 3, 6, 5
    # one layer, one direction: gates x H x (I + H) per step and sample
    assert macs(nn.RNN(features, hidden, batch_first=True), (steps, features), batch) == \
        steps * batch * 1 * hidden * (features + hidden)
    assert macs(nn.GRU(features, hidden, batch_first=True), (steps, features), batch) == \
        steps * batch * 3 * hidden * (features + hidden)
    # two layers, both directions: layer 1 reads both directions' outputs (2H wide)
    lstm = nn.LSTM(features, hidden, num_layers=2, bidirectional=True, batch_first=True)
    per_step = 2 * 4 * hidden * (features + hidden) + 2 * 4 * hidden * (2 * hidden + hidden)
    assert macs(lstm, (steps, features), batch) == steps * batch * per_step
    # time first (the summary's batch of 3 is then the sequence) and unbatched inputs count the same
    assert macs(nn.LSTM(features, hidden), (batch, features), steps) == steps * batch * 4 * hidden * (features + hidden)
    assert macs(nn.GRU(features, hidden), (features,), steps) == steps * 3 * hidden * (features + hidden)


def test_recurrent_cells_count_one_step():
    assert macs(nn.RNNCell(6, 5), (6,), 4) == 4 * 5 * 11
    assert macs(nn.LSTMCell(6, 5), (6,), 4) == 4 * 4 * 5 * 11  # (h', c'): counted once
    assert macs(nn.GRUCell(6, 5, bias=False), (6,), 4) == 4 * 3 * 5 * 11


def test_recurrent_counts_agree_with_torch_flop_counter():
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    cases = [
        (nn.GRU(6, 5, num_layers=2, batch_first=True), torch.nn.GRU(6, 5, num_layers=2, batch_first=True)),
        (nn.RNN(6, 5, bidirectional=True, batch_first=True), torch.nn.RNN(6, 5, bidirectional=True, batch_first=True)),
    ]
    for ours, theirs in cases:
        with FlopCounterMode(display=False) as counter:
            theirs(torch.zeros(3, 7, 6))
        assert macs(ours, (7, 6), 3) == counter.get_total_flops() // 2, type(ours).__name__


# ----------------------------------------------------------------------------- attention
class CrossAttention(Module):
    """Queries of length L attend to the first S <= L positions of the input (keys / values of kdim / vdim)."""

    def __init__(self, e, heads, source, kdim=None, vdim=None, **options):
        super().__init__()
        self.source = source
        self.kdim, self.vdim = kdim or e, vdim or e
        self.attn = nn.MultiheadAttention(e, heads, kdim=kdim, vdim=vdim, batch_first=True, **options)
        self.need_weights = True

    def forward(self, x):
        memory = x[:, :self.source]
        key = memory[..., :1].expand(*memory.shape[:2], self.kdim)
        value = memory[..., :1].expand(*memory.shape[:2], self.vdim)
        return self.attn(x, key, value, need_weights=self.need_weights)[0]


def attention_macs(n, length, source, e, kdim=None, vdim=None):
    kdim, vdim = kdim or e, vdim or e
    projections = n * (length * e * e + source * kdim * e + source * vdim * e)
    products = 2 * n * length * source * e  # Q K^T and A V
    return projections + products, n * length * e * e  # (the layer's own, out_proj)


def test_multihead_attention_counts_projections_and_both_products():
    n, length, source, e = 2, 5, 3, 8
    model = CrossAttention(e, 2, source)
    s = minidl.summary(model, (length, e), batch_size=n)
    own, out_proj = attention_macs(n, length, source, e)
    assert s["attn.out_proj"].macs == out_proj
    assert s["attn"].own_macs == own and s["attn"].macs == own + out_proj == s.total_macs
    # without weights the layer runs F.scaled_dot_product_attention: the same count, not twice
    model.need_weights = False
    assert macs(model, (length, e), n) == own + out_proj


def test_multihead_attention_with_kdim_vdim_and_extra_keys():
    n, length, source, e = 2, 6, 4, 8
    s = minidl.summary(CrossAttention(e, 4, source, kdim=3, vdim=5), (length, e), batch_size=n)
    own, out_proj = attention_macs(n, length, source, e, kdim=3, vdim=5)
    assert s["attn"].own_macs == own and s.total_macs == own + out_proj
    # add_bias_kv and add_zero_attn each add one key (and value) that every query attends to
    s = minidl.summary(CrossAttention(e, 2, source, add_bias_kv=True, add_zero_attn=True), (length, e), batch_size=n)
    own, out_proj = attention_macs(n, length, source, e)
    assert s.total_macs == own + out_proj + 2 * n * length * 2 * e


def test_multihead_attention_agrees_with_torch_flop_counter():
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    n, length, source, e = 2, 5, 7, 8
    theirs = torch.nn.MultiheadAttention(e, 2, batch_first=True).eval()
    query, memory = torch.zeros(n, length, e), torch.zeros(n, source, e)
    with FlopCounterMode(display=False) as counter:
        theirs(query, memory, memory, need_weights=True)
    own, out_proj = attention_macs(n, length, source, e)
    assert own + out_proj == counter.get_total_flops() // 2


class SelfAttentionBlock(Module):
    """A layer that calls F.scaled_dot_product_attention itself, with grouped-query heads."""

    def __init__(self, e, heads, kv_heads):
        super().__init__()
        self.heads, self.kv_heads, self.d = heads, kv_heads, e // heads
        self.q = nn.Linear(e, e, bias=False)
        self.kv = nn.Linear(e, 2 * kv_heads * self.d, bias=False)

    def forward(self, x):
        n, length, e = x.shape
        q = self.q(x).reshape(n, length, self.heads, self.d).transpose(1, 2)
        k, v = self.kv(x).reshape(n, length, 2, self.kv_heads, self.d).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return out.transpose(1, 2).reshape(n, length, e)


class TwoBlocks(Module):
    def __init__(self, e):
        super().__init__()
        self.block = SelfAttentionBlock(e, heads=4, kv_heads=2)
        self.head = nn.Linear(e, 3)

    def forward(self, x):
        x = self.block(x)
        # the model's own forward attends once more, directly
        q = x.reshape(x.shape[0], x.shape[1], 2, -1).transpose(1, 2)
        x = F.scaled_dot_product_attention(q, q, q).transpose(1, 2).reshape(x.shape)
        return self.head(x)


def test_layers_calling_scaled_dot_product_attention_count_it():
    n, length, e = 2, 6, 16
    original = F.scaled_dot_product_attention
    s = minidl.summary(TwoBlocks(e), (length, e), batch_size=n)
    assert F.scaled_dot_product_attention is original  # the counting wrapper is gone again
    projections = n * length * e * e + n * length * e * (2 * 2 * 4)
    attention = 2 * n * 4 * length * length * 4  # Q K^T and A V: 4 query heads of width 4, causal or not
    assert s["block.q"].macs + s["block.kv"].macs == projections
    assert s["block"].own_macs == attention and s["block"].macs == projections + attention
    model_attention = 2 * n * 2 * length * length * (e // 2)  # in the model's forward: counted, without a row
    assert s.total_macs == projections + attention + model_attention + n * length * e * 3


def test_scaled_dot_product_attention_is_restored_when_the_forward_fails():
    original = F.scaled_dot_product_attention
    with pytest.raises(Exception):
        minidl.summary(TwoBlocks(16), (6, 15))
    assert F.scaled_dot_product_attention is original


# ----------------------------------------------------------------------------- no MACs
def test_embedding_and_normalisation_count_nothing():
    # an integer dtype gives an all-zero input: token ids for the look-up
    s = minidl.summary(Wrap(nn.Embedding(10, 4)), (5,), dtype=np.int64)
    assert s.total_macs == 0 and s["layer"].output_shape == [1, 5, 4] and s.input_bytes == 5 * 8
    assert macs(nn.LayerNorm(8), (5, 8)) == 0
    assert macs(nn.GroupNorm(2, 4), (4, 3, 3)) == 0
    assert macs(nn.RMSNorm(8), (5, 8)) == 0


# ----------------------------------------------------------------------------- whole models
class TinyTransformer(Module):
    """Token ids -> embedding -> 2 encoder layers -> per-token classes."""

    def __init__(self, vocab=20, e=8, heads=2, ff=16, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab, e)
        layer = nn.TransformerEncoderLayer(e, heads, dim_feedforward=ff, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(e, classes)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens)))


def test_small_transformer_summary_prints_with_the_right_totals():
    n, length, e, ff = 2, 6, 8, 16
    s = minidl.summary(TinyTransformer(), (length,), batch_size=n, dtype=np.int64, depth=4)
    own, out_proj = attention_macs(n, length, length, e)
    feed_forward = 2 * n * length * e * ff
    per_layer = own + out_proj + feed_forward
    assert s["encoder.layers.0"].macs == s["encoder.layers.1"].macs == per_layer
    assert s["encoder.layers.0.self_attn"].macs == own + out_proj
    assert s["encoder.layers.0.norm1"].macs == 0
    assert s.total_macs == 2 * per_layer + n * length * e * 3
    text = str(s)
    assert "MultiheadAttention" in text and "TransformerEncoderLayer" in text
    assert f"Total mult-adds: {s.total_macs:,}" in text
    assert s.total_params == sum(p.numel() for p in TinyTransformer().parameters())


class Seq2Seq(Module):
    """nn.Transformer, time first: the source is the input, the target its first 3 positions."""

    def __init__(self, e=8, heads=2, ff=16):
        super().__init__()
        self.transformer = nn.Transformer(e, heads, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=ff,
                                          dropout=0.0)

    def forward(self, x):
        src = x.transpose(0, 1)  # (S, N, E)
        return self.transformer(src, src[:3])


def test_encoder_decoder_transformer_counts_cross_attention_over_the_source():
    n, source, target, e, ff = 2, 5, 3, 8, 16
    s = minidl.summary(Seq2Seq(), (source, e), batch_size=n, depth=5)
    encoder_attention = sum(attention_macs(n, source, source, e))
    decoder_self = sum(attention_macs(n, target, target, e))
    cross = sum(attention_macs(n, target, source, e))  # target queries, source keys
    assert s["transformer.decoder.layers.0.multihead_attn"].macs == cross
    assert s["transformer.decoder.layers.0.self_attn"].macs == decoder_self
    feed_forward = 2 * e * ff
    assert s["transformer.encoder"].macs == encoder_attention + n * source * feed_forward
    assert s.total_macs == encoder_attention + decoder_self + cross + n * (source + target) * feed_forward


class LSTMClassifier(Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 5, num_layers=2, batch_first=True)
        self.fc = nn.Linear(5, 4)

    def forward(self, x):
        output, (h, c) = self.lstm(x)
        return self.fc(output[:, -1])


def test_lstm_model_summary_prints_with_the_right_totals():
    s = minidl.summary(LSTMClassifier(), (7, 6), batch_size=3)
    lstm = 7 * 3 * (4 * 5 * (6 + 5) + 4 * 5 * (5 + 5))
    assert s["lstm"].macs == lstm and s["fc"].macs == 3 * 5 * 4
    assert s.total_macs == lstm + 60
    assert s["lstm"].output_shapes == [[3, 7, 5], [2, 3, 5], [2, 3, 5]]
    text = str(s)
    assert "LSTM" in text and f"{lstm:,}" in text and f"Total mult-adds: {lstm + 60:,}" in text


# ----------------------------------------------------------------------------- minidl models
NEW_ZOO = {
    "resnet20_cifar": 269_722, "resnet32_cifar": 464_154, "resnet44_cifar": 658_586, "resnet56_cifar": 853_018,
    "resnet110_cifar": 1_727_962, "preact_resnet164_cifar": 1_703_258, "preact_resnet1001_cifar": 10_327_706,
    "inception_v4": 42_679_816, "inception_resnet_v2": 55_843_464, "bn_inception": 11_285_224,
    "mobilenet_v3_large": 5_483_032, "mobilenet_v3_small": 2_542_856,
    "shufflenet_v2_x0_5": 1_366_792, "shufflenet_v2_x1_0": 2_278_604, "shufflenet_v2_x1_5": 3_503_624,
    "shufflenet_v2_x2_0": 7_393_996, "squeezenet1_0": 1_248_424, "squeezenet1_1": 1_235_496,
    "conv_mobilenet_v1": 29_294_088,
}


def test_cli_models_lists_every_registered_model_with_its_count(capsys):
    assert main(["models"]) == 0  # 0: no model differs from its published count
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == set(models.list_models())
    for name, count in NEW_ZOO.items():
        assert rows[name][1:4] == [f"{count:,}", f"{count:,}", "✓"], rows[name]
