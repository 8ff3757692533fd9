"""Embedding: a learned lookup table of vectors, indexed by integers (PyTorch's ``nn.Embedding``)."""
from __future__ import annotations

import numpy as np

from ..grad_mode import no_grad
from . import functional as F
from . import init
from .module import Module, Parameter


class Embedding(Module):
    """A lookup table of learned vectors, indexed by integers (word or character embeddings).

    Formula: y[..., :] = weight[input[...], :] (a Linear layer applied to one-hot inputs, without the product)

    Args:
        num_embeddings (int): V, the table's rows.
        embedding_dim (int): D.
        padding_idx (int, optional): that row starts at zero and gets no gradient. Default: None.
        max_norm (float, optional): looked-up rows are renormalised in place to this norm. Default: None.
        norm_type (float): the p of max_norm. Default: 2.0.
        scale_grad_by_freq (bool): divide each row's gradient by its count in the batch. Default: False.
        sparse (bool): accepted; the gradient is dense. Default: False.
        _weight (Tensor, optional): an initial table. Default: None.
        _freeze (bool): the table gets no gradient. Default: False.
        dtype: Default: None (float32).

    Shape:
        input (*) int64, output (*, D).

    Attributes:
        weight (Parameter): (V, D), drawn from N(0, 1).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> emb = nn.Embedding(10, 3, padding_idx=0)
    >>> emb(minidl.tensor([[1, 2, 0]])).shape
    (1, 3, 3)
    >>> emb(minidl.tensor([0]))
    tensor([[0., 0., 0.]], grad_fn=<EmbeddingBackward0>)

    See docs/linear.md.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, dtype=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be within num_embeddings={num_embeddings}, "
                                 f"got {padding_idx}")
            padding_idx = padding_idx % num_embeddings
        self.padding_idx, self.max_norm, self.norm_type = padding_idx, max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype or np.float32),
                                    requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight must have shape ({num_embeddings}, {embedding_dim}), "
                                 f"got {tuple(_weight.shape)}")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight.data[self.padding_idx] = 0

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        """An Embedding holding ``embeddings`` (2-D) as its weight, frozen unless ``freeze=False``."""
        if embeddings.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape {tuple(embeddings.shape)}")
        data = embeddings.data if hasattr(embeddings, "data") and not isinstance(embeddings, np.ndarray) else embeddings
        rows, dim = data.shape
        return cls(rows, dim, padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
                   scale_grad_by_freq=scale_grad_by_freq, sparse=sparse, _weight=data.copy(), _freeze=freeze)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        if self.sparse:
            s += ", sparse=True"
        return s


class EmbeddingBag(Module):
    """Sums, means or maxima of bags of embeddings (see F.embedding_bag), without the (B, L, D) lookup.

    Formula: y[b] = sum / mean / max over the indices i of bag b of weight[i]

    Args:
        num_embeddings (int): V.
        embedding_dim (int): D.
        max_norm, norm_type, scale_grad_by_freq, sparse: as Embedding. Defaults: None, 2.0, False, False.
        mode (str): 'sum', 'mean' or 'max'. Default: 'mean'.
        _weight (Tensor, optional): an initial table. Default: None.
        include_last_offset (bool): offsets has B + 1 entries. Default: False.
        padding_idx (int, optional): entries left out of their bag. Default: None.
        dtype: Default: None (float32).

    Shape:
        input (B, L), or (n,) with offsets (B,); output (B, D). forward(input, offsets=None,
        per_sample_weights=None).

    Attributes:
        weight (Parameter): (V, D), drawn from N(0, 1).

    >>> import minidl, minidl.nn as nn
    >>> w = minidl.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]])
    >>> bag = nn.EmbeddingBag(3, 2, mode='sum', _weight=w)
    >>> bag(minidl.tensor([1, 2, 0, 2]), minidl.tensor([0, 2]))
    tensor([[4., 6.],
            [3., 4.]], grad_fn=<MatMulBackward0>)

    See docs/linear.md.
    """

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                 mode="mean", sparse=False, _weight=None, include_last_offset=False, padding_idx=None, dtype=None):
        super().__init__()
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"EmbeddingBag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.max_norm, self.norm_type, self.scale_grad_by_freq = max_norm, norm_type, scale_grad_by_freq
        self.mode, self.sparse, self.include_last_offset = mode, sparse, include_last_offset
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"EmbeddingBag: padding_idx must be within num_embeddings={num_embeddings}, "
                                 f"got {padding_idx}")
            padding_idx = padding_idx % num_embeddings
        self.padding_idx = padding_idx
        if _weight is None:
            self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype or np.float32))
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"EmbeddingBag: _weight must have shape ({num_embeddings}, {embedding_dim}), "
                                 f"got {tuple(_weight.shape)}")
            self.weight = Parameter(_weight)

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight.data[self.padding_idx] = 0

    def forward(self, input, offsets=None, per_sample_weights=None):
        return F.embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type, self.scale_grad_by_freq,
                               self.mode, self.sparse, per_sample_weights, self.include_last_offset, self.padding_idx)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                        mode="mean", sparse=False, include_last_offset=False, padding_idx=None):
        """An EmbeddingBag holding ``embeddings`` (2-D) as its weight, frozen unless ``freeze=False``."""
        if embeddings.ndim != 2:
            raise ValueError(f"EmbeddingBag.from_pretrained: embeddings must be 2-D, "
                             f"got shape {tuple(embeddings.shape)}")
        data = embeddings if isinstance(embeddings, np.ndarray) else embeddings.data
        bag = cls(data.shape[0], data.shape[1], max_norm, norm_type, scale_grad_by_freq, mode, sparse, data.copy(),
                  include_last_offset, padding_idx)
        bag.weight.requires_grad = not freeze
        return bag

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        s += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s
