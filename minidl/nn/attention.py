"""Multi-head attention (Vaswani et al., 2017, "Attention Is All You Need", section 3.2).

``MultiheadAttention`` follows ``torch.nn.MultiheadAttention``: the same arguments, the same
parameter layout (``in_proj_weight`` (3E, E) and ``in_proj_bias`` (3E,) holding the query, key
and value projections one above the other, or ``q_proj_weight`` / ``k_proj_weight`` /
``v_proj_weight`` when ``kdim`` or ``vdim`` differ from ``embed_dim``; ``out_proj``; and
``bias_k`` / ``bias_v`` with ``add_bias_kv``), the same initialisation, the same masks, so that
a PyTorch state_dict loads as it is and gives the same outputs.

Per head h, with head_dim = E / num_heads::

    Q_h = query W_q,h + b_q,h      K_h = key W_k,h + b_k,h      V_h = value W_v,h + b_v,h
    A_h = softmax(Q_h K_h^T / sqrt(head_dim) + mask)             (each row sums to 1)
    out = concat_h(A_h V_h) W_o^T + b_o

Masks are additive: a float mask is added to the scores, a bool mask puts -inf where it is
True (that key is not attended to). The softmax is the fused row kernel of
``minidl.functions.softmax_fused``.

>>> import minidl
>>> mha = MultiheadAttention(8, 2, batch_first=True)
>>> x = minidl.randn(3, 5, 8)                      # (N, L, E)
>>> out, weights = mha(x, x, x)
>>> out.shape, weights.shape
((3, 5, 8), (3, 5, 5))
"""
from __future__ import annotations

import math

import numpy as np

from minidl.backend import get_array_module
from minidl.functions.softmax_fused import SoftmaxLastDim
from ..tensor import Tensor, apply, cat
from . import functional as F
from . import init
from .layers import Linear
from .module import Module, Parameter


def _attention(q, k, v, mask, dropout_p, training, safe=False):
    """Scaled dot-product attention on (..., L, D) queries, (..., S, D) keys and (..., S, Dv) values.

    ``mask`` is None or an additive float Tensor broadcastable to (..., L, S). Returns
    ``(output (..., L, Dv), weights (..., L, S))``; the weights are those that multiplied the
    values, after dropout (as PyTorch's MultiheadAttention returns them). A query whose keys
    are all masked gets NaN weights, as PyTorch's softmax, or with ``safe=True`` zero weights
    and a zero output, as PyTorch's scaled_dot_product_attention.
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = (q * scale) @ k.transpose(-2, -1)  # (..., L, S)
    if mask is not None:
        scores = scores + mask
    weights = apply(SoftmaxLastDim, scores, safe=safe)  # rows sum to 1 over the S keys
    if dropout_p > 0.0 and training:
        weights = F.dropout(weights, dropout_p, training=True)
    return weights @ v, weights  # (..., L, Dv), (..., L, S)


def _additive_mask(mask, name, dtype, xp):
    """A bool mask (True = not attended) as a float Tensor with -inf there, or a float mask as it is.

    ``xp`` is the array module of the query: a mask given as a NumPy array follows the query to the GPU.
    """
    if mask is None:
        return None
    if isinstance(mask, Tensor) and mask.requires_grad:  # a learned float mask: keep it in the graph
        if mask.dtype.kind != "f":
            raise AssertionError(f"only bool and floating types of {name} are supported")
        return mask if mask.dtype == dtype else mask.to(dtype=dtype)
    array = xp.asarray(mask.data if isinstance(mask, Tensor) else mask)
    if array.dtype == np.bool_:
        return Tensor(xp.where(array, -np.inf, 0.0).astype(dtype))
    if array.dtype.kind != "f":
        raise AssertionError(f"only bool and floating types of {name} are supported")
    return Tensor(array.astype(dtype, copy=False))


def _pad_last(mask, value=0.0):
    """Append one column of ``value`` to the last dimension of an additive mask (None stays None)."""
    if mask is None:
        return None
    xp = get_array_module(mask.data)
    column = Tensor(xp.full(mask.shape[:-1] + (1,), value, dtype=mask.dtype))
    return cat([mask, column], dim=-1)


def _causal_mask(length, source_length, dtype, xp):
    """(L, S) additive mask with -inf above the diagonal: query i sees keys 0..i."""
    above = xp.triu(xp.ones((length, source_length), dtype=bool), k=1)
    return Tensor(xp.where(above, -np.inf, 0.0).astype(dtype))


class MultiheadAttention(Module):
    """Multi-head attention (Vaswani et al. 2017): queries attend to keys and values in num_heads subspaces.

    Formula: head_i = softmax(q W_q,i (k W_k,i)^T / sqrt(E / h) + mask) v W_v,i; y = concat(head_1..h) W_o^T + b_o

    Args:
        embed_dim (int): E.
        num_heads (int): h, dividing E.
        dropout (float): on the attention weights. Default: 0.0.
        bias (bool): biases of the projections. Default: True.
        add_bias_kv (bool): a learned key and value appended to the sequence. Default: False.
        add_zero_attn (bool): a zero key and value appended. Default: False.
        kdim, vdim (int, optional): key and value features. Default: None (E).
        batch_first (bool): (N, L, E) instead of (L, N, E). Default: False.
        device, dtype: Default: None.

    Shape:
        query (L, N, E), key (S, N, kdim), value (S, N, vdim) (batch first with batch_first, or unbatched (L, E));
        forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
        average_attn_weights=True, is_causal=False) returns (output (L, N, E), weights (N, L, S) averaged over
        heads, or (N, h, L, S), or None with need_weights=False).

    Attributes:
        in_proj_weight (3E, E) (xavier uniform), in_proj_bias (3E,) zeros, out_proj (Linear E -> E);
            q_proj_weight, k_proj_weight, v_proj_weight instead when kdim or vdim differ from E.

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> mha = nn.MultiheadAttention(8, 2, batch_first=True)
    >>> x = minidl.ones(3, 5, 8)
    >>> out, weights = mha(x, x, x)
    >>> out.shape, weights.shape
    ((3, 5, 8), (3, 5, 5))

    See docs/attention.md.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} "
                             f"and num_heads={num_heads} instead")
        if embed_dim % num_heads:
            raise AssertionError("embed_dim must be divisible by num_heads")
        dtype = dtype or np.float32
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dtype=dtype))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(np.empty((embed_dim, embed_dim), dtype=dtype))
            self.k_proj_weight = Parameter(np.empty((embed_dim, self.kdim), dtype=dtype))
            self.v_proj_weight = Parameter(np.empty((embed_dim, self.vdim), dtype=dtype))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(np.empty(3 * embed_dim, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        if add_bias_kv:
            self.bias_k = Parameter(np.empty((1, 1, embed_dim), dtype=dtype))
            self.bias_v = Parameter(np.empty((1, 1, embed_dim), dtype=dtype))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()
        if device is not None:
            self.to(device=device)

    def _reset_parameters(self):
        """PyTorch's: xavier_uniform projections, zero biases, xavier_normal bias_k / bias_v."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def _projection_weights(self):
        """(W_q, W_k, W_v) and (b_q, b_k, b_v): rows of in_proj_weight / in_proj_bias, or the separate weights."""
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            weights = (w[:e], w[e:2 * e], w[2 * e:])
        else:
            weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        b = self.in_proj_bias
        biases = (None, None, None) if b is None else (b[:e], b[e:2 * e], b[2 * e:])
        return weights, biases

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        batched = query.ndim == 3
        if query.ndim not in (2, 3):
            raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D "
                                 "query tensor")
        if key.ndim != query.ndim or value.ndim != query.ndim:
            raise AssertionError(f"key and value should have the dimension of query ({query.ndim}-D), got "
                                 f"{key.ndim}-D key and {value.ndim}-D value")
        # Work batch first: (N, L, E).
        if not batched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:  # (S,) -> (1, S)
                key_padding_mask = key_padding_mask.reshape(1, -1) if isinstance(key_padding_mask, Tensor) \
                    else np.asarray(key_padding_mask).reshape(1, -1)
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        n, length, e = query.shape
        source_length = key.shape[1]
        if e != self.embed_dim:
            raise AssertionError(f"was expecting embedding dimension of {self.embed_dim}, but got {e}")
        if key.shape[:2] != value.shape[:2]:
            raise AssertionError(f"key shape {key.shape} does not match value shape {value.shape}")

        dtype, xp = query.dtype, get_array_module(query.data)
        attn_mask = _additive_mask(attn_mask, "attn_mask", dtype, xp)
        key_padding_mask = _additive_mask(key_padding_mask, "key_padding_mask", dtype, xp)
        if is_causal and attn_mask is None:
            raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the Transformer "
                               "module method `generate_square_subsequent_mask` to create this mask.")
        if is_causal and key_padding_mask is None and not need_weights:
            # PyTorch then trusts the hint: the mask given is replaced by the causal one.
            attn_mask = _causal_mask(length, source_length, dtype, xp)
        if attn_mask is not None:
            if attn_mask.ndim == 2:
                if attn_mask.shape != (length, source_length):
                    raise RuntimeError(f"The shape of the 2D attn_mask is {attn_mask.shape}, but should be "
                                       f"{(length, source_length)}.")
            elif attn_mask.ndim == 3:
                if attn_mask.shape != (n * self.num_heads, length, source_length):
                    raise RuntimeError(f"The shape of the 3D attn_mask is {attn_mask.shape}, but should be "
                                       f"{(n * self.num_heads, length, source_length)}.")
            else:
                raise RuntimeError(f"attn_mask's dimension {attn_mask.ndim} is not supported")
        if key_padding_mask is not None and key_padding_mask.shape != (n, source_length):
            raise AssertionError(f"expecting key_padding_mask shape of {(n, source_length)}, but got "
                                 f"{key_padding_mask.shape}")

        # Input projections.
        (w_q, w_k, w_v), (b_q, b_k, b_v) = self._projection_weights()
        q = F.linear(query, w_q, b_q)  # (N, L, E)
        k = F.linear(key, w_k, b_k)    # (N, S, E)
        v = F.linear(value, w_v, b_v)  # (N, S, E)
        if self.bias_k is not None:  # one more key and value, learned, that every query may attend to
            k = cat([k, self.bias_k.expand(n, 1, e)], dim=1)
            v = cat([v, self.bias_v.expand(n, 1, e)], dim=1)
            attn_mask, key_padding_mask = _pad_last(attn_mask), _pad_last(key_padding_mask)

        # Split the heads: (N, H, L, head_dim).
        h, d = self.num_heads, self.head_dim
        q = q.reshape(n, length, h, d).transpose(1, 2)
        k = k.reshape(n, k.shape[1], h, d).transpose(1, 2)
        v = v.reshape(n, v.shape[1], h, d).transpose(1, 2)
        if self.add_zero_attn:  # one more all-zero key and value
            zeros = Tensor(xp.zeros((n, h, 1, d), dtype=dtype))
            k, v = cat([k, zeros], dim=2), cat([v, zeros], dim=2)
            attn_mask, key_padding_mask = _pad_last(attn_mask), _pad_last(key_padding_mask)

        # One additive mask broadcastable to (N, H, L, S).
        mask = None
        if attn_mask is not None:
            mask = attn_mask if attn_mask.ndim == 2 else attn_mask.reshape(n, h, length, attn_mask.shape[-1])
        if key_padding_mask is not None:
            padding = key_padding_mask.reshape(n, 1, 1, key_padding_mask.shape[-1])
            mask = padding if mask is None else mask + padding

        if need_weights:
            out, weights = _attention(q, k, v, mask, self.dropout, self.training)
        else:
            # Without weights to return, PyTorch runs scaled_dot_product_attention (one fused node here,
            # minidl/functions/attention.py), whose softmax gives zeros, not NaN, to a query that may
            # attend to no key.
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                                 dropout_p=self.dropout if self.training else 0.0)
        # out (N, H, L, d), weights (N, H, L, S)
        out = out.transpose(1, 2).reshape(n, length, e)  # heads side by side again
        out = self.out_proj(out)

        if not batched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)  # (L, N, E)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(dim=1)  # (N, L, S)
        return out, (weights if batched else weights.squeeze(0))
