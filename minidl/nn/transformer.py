"""Transformer encoder and decoder layers, stacks and model (Vaswani et al., 2017, "Attention Is All You Need").

The classes follow ``torch.nn.TransformerEncoderLayer`` / ``TransformerEncoder`` /
``TransformerDecoderLayer`` / ``TransformerDecoder`` / ``Transformer``: the same arguments and defaults, and the
same submodule names (``self_attn``, ``multihead_attn``, ``linear1``, ``dropout``, ``linear2``,
``norm1..3``, ``dropout1..3``; stacks hold ``layers.0``, ``layers.1``, ... and ``norm``), so
PyTorch state_dicts load as they are.

An encoder layer is two residual blocks, self-attention and a feed-forward network::

    post-norm (the paper, norm_first=False):   x = norm1(x + SA(x));      x = norm2(x + FF(x))
    pre-norm  (norm_first=True):               x = x + SA(norm1(x));      x = x + FF(norm2(x))

with FF(x) = linear2(dropout(activation(linear1(x)))). A decoder layer adds a block of
attention from the target to the encoder's output (``memory``) between the two.

>>> import minidl
>>> layer = TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True)
>>> encoder = TransformerEncoder(layer, num_layers=2)
>>> encoder(minidl.randn(3, 5, 8)).shape
(3, 5, 8)
"""
from __future__ import annotations

import copy

import numpy as np

from ..tensor import Tensor
from . import functional as F
from . import init
from .attention import MultiheadAttention
from .layers import Dropout, Linear, ModuleList
from .module import Module
from .normalization import LayerNorm


def _activation_fn(activation):
    """"relu" / "gelu" as the functional, a callable (function or Module) as it is."""
    if isinstance(activation, str) and activation == "relu":
        return F.relu
    if isinstance(activation, str) and activation == "gelu":
        return F.gelu
    if callable(activation) and not isinstance(activation, str):
        return activation
    raise RuntimeError(f"activation should be relu/gelu, not {activation}")


def _clones(module, n):
    return ModuleList([copy.deepcopy(module) for _ in range(n)])


class TransformerEncoderLayer(Module):
    """One Transformer encoder block: self-attention and a feed-forward network, each residual with layer norm.

    Formula: post-norm: x = norm1(x + drop(self_attn(x))); x = norm2(x + drop(W2 drop(act(W1 x))));
             pre-norm (norm_first): x = x + drop(self_attn(norm1(x))); x = x + drop(ff(norm2(x)))

    Args:
        d_model (int): E, the feature size.
        nhead (int): heads of each attention.
        dim_feedforward (int): the hidden size of the feed-forward network. Default: 2048.
        dropout (float): Default: 0.1.
        activation (str or callable): 'relu' or 'gelu'. Default: 'relu'.
        layer_norm_eps (float): Default: 1e-05.
        batch_first (bool): (N, S, E) instead of (S, N, E). Default: False.
        norm_first (bool): pre-norm (x + f(norm(x))) instead of post-norm (norm(x + f(x))). Default: False.
        bias (bool): biases in the linear layers and norms. Default: True.
        device, dtype: Default: None.

    Shape:
        src (S, N, E) or (N, S, E) with batch_first, output the same. forward(src, src_mask=None,
        src_key_padding_mask=None, is_causal=False).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
    >>> layer(minidl.ones(3, 5, 8)).shape
    (3, 5, 8)

    See docs/attention.md.
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation_fn(activation)
        if device is not None:
            self.to(device=device)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class TransformerDecoderLayer(Module):
    """One Transformer decoder block: self-attention, attention to the encoder's output (memory), feed-forward.

    Formula: post-norm: x = norm1(x + sa(x)); x = norm2(x + mha(x, memory));
             x = norm3(x + ff(x)) (pre-norm with norm_first)

    Args:
        d_model (int): E, the feature size.
        nhead (int): heads of each attention.
        dim_feedforward (int): the hidden size of the feed-forward network. Default: 2048.
        dropout (float): Default: 0.1.
        activation (str or callable): 'relu' or 'gelu'. Default: 'relu'.
        layer_norm_eps (float): Default: 1e-05.
        batch_first (bool): (N, S, E) instead of (S, N, E). Default: False.
        norm_first (bool): pre-norm (x + f(norm(x))) instead of post-norm (norm(x + f(x))). Default: False.
        bias (bool): biases in the linear layers and norms. Default: True.
        device, dtype: Default: None.

    Shape:
        tgt (T, N, E), memory (S, N, E) (batch first with batch_first), output like tgt.
        forward(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
        memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> layer = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, batch_first=True)
    >>> layer(minidl.ones(3, 4, 8), minidl.ones(3, 6, 8)).shape
    (3, 4, 8)

    See docs/attention.md.
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                 batch_first=batch_first, dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _activation_fn(activation)
        if device is not None:
            self.to(device=device)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)

    def _mha_block(self, x, memory, attn_mask, key_padding_mask, is_causal):
        x = self.multihead_attn(x, memory, memory, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                need_weights=False, is_causal=is_causal)[0]
        return self.dropout2(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout3(x)


def _is_causal(mask, is_causal, length):
    """PyTorch's reading of ``is_causal=None``: True when the mask given is the causal (L, L) one."""
    if is_causal is not None:
        return bool(is_causal)
    if mask is None:
        return False
    array = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if tuple(array.shape) != (length, length):
        return False
    above = np.triu(np.ones((length, length), dtype=bool), k=1)
    array = np.asarray(array.get() if hasattr(array, "get") else array)
    if array.dtype == np.bool_:
        return bool((array == above).all())
    return bool((np.where(above, -np.inf, 0.0) == array).all())


class TransformerEncoder(Module):
    """A stack of num_layers copies of an encoder layer, then an optional final norm.

    Formula: x = norm(layer_n(... layer_1(x))); enable_nested_tensor and mask_check are accepted for PyTorch's
             signature (no nested tensors: padded positions are computed, not zeroed)

    Args:
        encoder_layer (TransformerEncoderLayer): copied num_layers times (deep copies).
        num_layers (int): how many copies are stacked.
        norm (Module, optional): Default: None.
        enable_nested_tensor (bool): Default: True.
        mask_check (bool): Default: True.

    Shape:
        src (S, N, E) or (N, S, E), output the same. forward(src, mask=None, src_key_padding_mask=None,
            is_causal=None).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    >>> enc = nn.TransformerEncoder(layer, num_layers=2, norm=nn.LayerNorm(8))
    >>> len(enc.layers), enc(minidl.ones(5, 3, 8)).shape
    (2, (5, 3, 8))

    See docs/attention.md.
    """

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True):
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.mask_check = mask_check

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        first = self.layers[0] if self.num_layers else None
        seq_dim = 1 if first is not None and first.self_attn.batch_first and src.ndim == 3 else 0
        causal = _is_causal(mask, is_causal, src.shape[seq_dim])
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=causal)
        if self.norm is not None:
            x = self.norm(x)
        return x


class TransformerDecoder(Module):
    """A stack of num_layers copies of a decoder layer, each attending to the same memory, then an optional norm.

    Formula: x = norm(layer_n(... layer_1(x, memory) ..., memory))

    Args:
        decoder_layer (TransformerDecoderLayer): copied num_layers times.
        num_layers (int): how many copies are stacked.
        norm (Module, optional): Default: None.

    Shape:
        tgt (T, N, E), memory (S, N, E), output like tgt. forward(tgt, memory, tgt_mask=None, memory_mask=None,
        tgt_key_padding_mask=None, memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, dim_feedforward=16), num_layers=2)
    >>> dec(minidl.ones(4, 3, 8), minidl.ones(6, 3, 8)).shape
    (4, 3, 8)

    See docs/attention.md.
    """

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        first = self.layers[0] if self.num_layers else None
        seq_dim = 1 if first is not None and first.self_attn.batch_first and tgt.ndim == 3 else 0
        causal = _is_causal(tgt_mask, tgt_is_causal, tgt.shape[seq_dim])
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=causal, memory_is_causal=memory_is_causal)
        if self.norm is not None:
            x = self.norm(x)
        return x


class Transformer(Module):
    """The encoder-decoder Transformer (Vaswani et al. 2017): a TransformerEncoder and a TransformerDecoder.

    Formula: memory = encoder(src); output = decoder(tgt, memory); every parameter of 2+ dimensions re-initialised
             xavier_uniform, as PyTorch

    Args:
        d_model (int): Default: 512.
        nhead (int): Default: 8.
        num_encoder_layers (int): Default: 6.
        num_decoder_layers (int): Default: 6.
        dim_feedforward (int): Default: 2048.
        dropout (float): Default: 0.1.
        activation (str or callable): Default: 'relu'.
        custom_encoder, custom_decoder (Module, optional): Default: None.
        layer_norm_eps (float): Default: 1e-05.
        batch_first (bool): Default: False.
        norm_first (bool): Default: False.
        bias (bool): Default: True.
        device, dtype: Default: None.

    Shape:
        src (S, N, E), tgt (T, N, E) (batch first with batch_first), output (T, N, E).
        Transformer.generate_square_subsequent_mask(T) gives the causal tgt_mask.

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> model = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
    ...                        dim_feedforward=16)
    >>> mask = nn.Transformer.generate_square_subsequent_mask(4)
    >>> model(minidl.ones(6, 2, 8), minidl.ones(4, 2, 8), tgt_mask=mask).shape
    (4, 2, 8)

    See docs/attention.md.
    """

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6, dim_feedforward=2048,
                 dropout=0.1, activation="relu", custom_encoder=None, custom_decoder=None, layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        options = dict(dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                       layer_norm_eps=layer_norm_eps, batch_first=batch_first, norm_first=norm_first, bias=bias,
                       dtype=dtype)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(TransformerEncoderLayer(d_model, nhead, **options), num_encoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(TransformerDecoderLayer(d_model, nhead, **options), num_decoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
        self._reset_parameters()
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first
        if device is not None:
            self.to(device=device)

    def _reset_parameters(self):
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        batch_dim = 0 if self.batch_first else 1
        if src.ndim == 3 and src.shape[batch_dim] != tgt.shape[batch_dim]:
            raise RuntimeError("the batch number of src and tgt must be equal")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError("the feature number of src and tgt must be equal to d_model")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz, device=None, dtype=None):
        """(sz, sz) float mask: 0 on and below the diagonal, -inf above (position i sees positions 0..i)."""
        above = np.triu(np.ones((sz, sz), dtype=bool), k=1)
        mask = Tensor(np.where(above, -np.inf, 0.0).astype(dtype or np.float32))
        return mask if device is None else mask.to(device=device)
