"""Recurrent layers: RNN (tanh / relu), LSTM and GRU over sequences, and their one-step cells.

PyTorch's arguments, parameter names (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``,
``bias_hh_l0``, ``..._reverse`` for the backward direction), gate order (LSTM i, f, g, o;
GRU r, z, n), initialisation (every parameter uniform in [-1/sqrt(H), 1/sqrt(H)]), shapes
(time first unless ``batch_first``; unbatched (T, I) inputs too) and outputs
(``output, h_n`` and, for the LSTM, ``output, (h_n, c_n)``).

A layer runs in two parts per direction: the input's pre-activations for every time step
in one matrix product (``x W_ih^T + b_ih``, (T, B, gates*H)), then the recurrence, one
step at a time, each step one matrix product with the hidden state and the gates. The
recurrence of one direction is one graph node (``minidl.functions.recurrent``: LSTMLayer,
with the fused cell kernel at each step, GRULayer, RNNLayer) whose backward runs through
time; the cells (LSTMCell, ...) are one step, from ``minidl.nn.functional``'s ``*_cell``.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import get_array_module
from ..tensor import Tensor, cat, stack
from . import functional as F
from . import init
from .module import Module, Parameter

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class RNNBase(Module):
    """The multi-layer, optionally bidirectional recurrence shared by RNN, LSTM and GRU.

    Formula: per layer and direction: the inputs' pre-activations x W_ih^T + b_ih for all steps in one product,
             then one step at a time h_t = cell(pre_t, h_{t-1}); G gates (RNN 1, LSTM 4, GRU 3)

    Args:
        mode (str): 'RNN_TANH', 'RNN_RELU', 'LSTM' or 'GRU'.
        input_size (int): I, features per time step.
        hidden_size (int): H.
        num_layers (int): stacked layers. Default: 1.
        bias (bool): use b_ih and b_hh. Default: True.
        batch_first (bool): input and output (N, T, *) instead of (T, N, *). Default: False.
        dropout (float): dropout on the outputs of every layer but the last (training only). Default: 0.0.
        bidirectional (bool): a second, reversed direction; outputs concatenated. Default: False.
        dtype: Default: None (float32).

    Shape:
        input (T, N, I) (or (N, T, I) with batch_first, or unbatched (T, I)); h_0 (L*D, N, H), zeros when
        not given; output (T, N, D*H): the last layer's h_t; h_n (L*D, N, H). D = 2 if bidirectional else 1.

    Attributes:
        weight_ih_l{k}, weight_hh_l{k} (Parameter): (G*H, I or D*H) and (G*H, H) per layer k
            (``_reverse`` for the backward direction); bias_ih_l{k}, bias_hh_l{k}: (G*H,).
            All initialised U(-1/sqrt(H), 1/sqrt(H)).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> nn.RNNBase('GRU', 3, 4).weight_ih_l0.shape
    (12, 3)

    See docs/recurrent.md.
    """

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, dtype=None):
        super().__init__()
        if mode not in _GATES:
            raise ValueError(f"RNNBase: unknown mode {mode!r}, expected one of {sorted(_GATES)}")
        if not 0 <= dropout <= 1:
            raise ValueError(f"{type(self).__name__}: dropout must be in [0, 1], got {dropout}")
        if hidden_size <= 0 or num_layers <= 0:
            raise ValueError(f"{type(self).__name__}: hidden_size and num_layers must be positive, "
                             f"got {hidden_size} and {num_layers}")
        self.mode, self.input_size, self.hidden_size, self.num_layers = mode, input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, float(dropout), bidirectional
        gates = _GATES[mode] * hidden_size
        dtype = dtype or np.float32
        directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                width = input_size if layer == 0 else hidden_size * directions
                setattr(self, f"weight_ih{suffix}", Parameter(np.empty((gates, width), dtype=dtype)))
                setattr(self, f"weight_hh{suffix}", Parameter(np.empty((gates, hidden_size), dtype=dtype)))
                if bias:
                    setattr(self, f"bias_ih{suffix}", Parameter(np.empty(gates, dtype=dtype)))
                    setattr(self, f"bias_hh{suffix}", Parameter(np.empty(gates, dtype=dtype)))
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _weights(self, layer, direction):
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        if self.bias:
            return (getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}"),
                    getattr(self, f"bias_ih{suffix}"), getattr(self, f"bias_hh{suffix}"))
        return getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}"), None, None

    def _check_state(self, h, expected, name):
        if tuple(h.shape) != expected:
            raise ValueError(f"{type(self).__name__}: expected {name} of shape {expected}, got {tuple(h.shape)}")

    def forward(self, input, hx=None):
        name = type(self).__name__
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: expected a 2-D (unbatched) or 3-D input, got shape {input.shape}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input_size={self.input_size} features, got shape {input.shape}")
        unbatched = input.ndim == 2
        lstm = self.mode == "LSTM"
        if unbatched:
            input = input.unsqueeze(1)
            if hx is not None:
                hx = tuple(h.unsqueeze(1) for h in hx) if lstm else hx.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        steps, batch = input.shape[0], input.shape[1]
        directions = 2 if self.bidirectional else 1
        state_shape = (self.num_layers * directions, batch, self.hidden_size)
        if hx is None:
            xp = get_array_module(input.data)
            zeros = Tensor._wrap(xp.zeros(state_shape, dtype=input.dtype))
            hx = (zeros, zeros) if lstm else zeros
        if lstm:
            self._check_state(hx[0], state_shape, "h_0")
            self._check_state(hx[1], state_shape, "c_0")
        else:
            self._check_state(hx, state_shape, "h_0")

        x, h_n, c_n = input, [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                state = (hx[0][k], hx[1][k]) if lstm else hx[k]
                out, state = self._run_direction(x, state, self._weights(layer, direction), reverse=direction == 1)
                outputs.append(out)
                if lstm:
                    h_n.append(state[0])
                    c_n.append(state[1])
                else:
                    h_n.append(state)
            x = outputs[0] if directions == 1 else cat(outputs, dim=2)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        output = x
        h_n = stack(h_n, 0)
        hidden = (h_n, stack(c_n, 0)) if lstm else h_n
        if unbatched:
            output = output.squeeze(1)
            hidden = tuple(h.squeeze(1) for h in hidden) if lstm else hidden.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, hidden

    def _run_direction(self, x, state, weights, reverse):
        """Run one direction of one layer over x (T, B, I): returns (output (T, B, H), final state)."""
        w_ih, w_hh, b_ih, b_hh = weights
        gi = F.linear(x, w_ih, b_ih)  # every time step's input pre-activations in one product
        # the whole recurrence of this direction in one node, with its backward through time
        if self.mode == "LSTM":  # the fused cell kernel at each step
            return F._lstm_layer(gi, state, w_hh, b_hh, reverse)
        if self.mode == "GRU":
            return F._gru_layer(gi, state, w_hh, b_hh, reverse)
        return F._rnn_layer(gi, state, w_hh, b_hh, "tanh" if self.mode == "RNN_TANH" else "relu", reverse)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman recurrent network (tanh or ReLU), multi-layer, optionally bidirectional.

    Formula: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (relu with nonlinearity='relu')

    Args:
        input_size (int): I, features per time step.
        hidden_size (int): H.
        num_layers (int): stacked layers. Default: 1.
        nonlinearity (str): 'tanh' or 'relu'. Default: 'tanh'.
        bias (bool): use b_ih and b_hh. Default: True.
        batch_first (bool): input and output (N, T, *) instead of (T, N, *). Default: False.
        dropout (float): dropout on the outputs of every layer but the last (training only). Default: 0.0.
        bidirectional (bool): a second, reversed direction; outputs concatenated. Default: False.
        dtype: Default: None (float32).

    Shape:
        input (T, N, I) (or (N, T, I) with batch_first, or unbatched (T, I)); h_0 (L*D, N, H), zeros when
        not given; output (T, N, D*H): the last layer's h_t; h_n (L*D, N, H). D = 2 if bidirectional else 1.

    Attributes:
        weight_ih_l{k}, weight_hh_l{k} (Parameter): (G*H, I or D*H) and (G*H, H) per layer k
            (``_reverse`` for the backward direction); bias_ih_l{k}, bias_hh_l{k}: (G*H,).
            All initialised U(-1/sqrt(H), 1/sqrt(H)).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> rnn = nn.RNN(3, 4, num_layers=2)
    >>> output, h_n = rnn(minidl.ones(5, 2, 3))
    >>> output.shape, h_n.shape
    ((5, 2, 4), (2, 2, 4))

    See docs/recurrent.md.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}, expected 'tanh' or 'relu'")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory (Hochreiter & Schmidhuber 1997), multi-layer, optionally bidirectional.

    Formula: i, f, g, o = split(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh, 4) (PyTorch's gate order);
             c_t = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g); h_t = sigmoid(o) tanh(c_t)

    Args:
        input_size (int): I, features per time step.
        hidden_size (int): H.
        num_layers (int): stacked layers. Default: 1.
        bias (bool): use b_ih and b_hh. Default: True.
        batch_first (bool): input and output (N, T, *) instead of (T, N, *). Default: False.
        dropout (float): dropout on the outputs of every layer but the last (training only). Default: 0.0.
        bidirectional (bool): a second, reversed direction; outputs concatenated. Default: False.
        dtype: Default: None (float32).

    Shape:
        input (T, N, I) (or (N, T, I) with batch_first, or unbatched (T, I)); h_0 (L*D, N, H), zeros when
        not given; output (T, N, D*H): the last layer's h_t; h_n (L*D, N, H). D = 2 if bidirectional else 1.
        hx and the second output are pairs (h, c), c shaped as h.

    Attributes:
        weight_ih_l{k}, weight_hh_l{k} (Parameter): (G*H, I or D*H) and (G*H, H) per layer k
            (``_reverse`` for the backward direction); bias_ih_l{k}, bias_hh_l{k}: (G*H,).
            All initialised U(-1/sqrt(H), 1/sqrt(H)).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True)
    >>> output, (h_n, c_n) = lstm(minidl.ones(2, 5, 3))
    >>> output.shape, h_n.shape, c_n.shape
    ((2, 5, 8), (2, 2, 4), (2, 2, 4))

    See docs/recurrent.md.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype)


class GRU(RNNBase):
    """Gated recurrent unit (Cho et al. 2014), multi-layer, optionally bidirectional.

    Formula: r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z = sigmoid(W_iz x + b_iz + W_hz h + b_hz),
             n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h_t = (1 - z) n + z h_{t-1}

    Args:
        input_size (int): I, features per time step.
        hidden_size (int): H.
        num_layers (int): stacked layers. Default: 1.
        bias (bool): use b_ih and b_hh. Default: True.
        batch_first (bool): input and output (N, T, *) instead of (T, N, *). Default: False.
        dropout (float): dropout on the outputs of every layer but the last (training only). Default: 0.0.
        bidirectional (bool): a second, reversed direction; outputs concatenated. Default: False.
        dtype: Default: None (float32).

    Shape:
        input (T, N, I) (or (N, T, I) with batch_first, or unbatched (T, I)); h_0 (L*D, N, H), zeros when
        not given; output (T, N, D*H): the last layer's h_t; h_n (L*D, N, H). D = 2 if bidirectional else 1.

    Attributes:
        weight_ih_l{k}, weight_hh_l{k} (Parameter): (G*H, I or D*H) and (G*H, H) per layer k
            (``_reverse`` for the backward direction); bias_ih_l{k}, bias_hh_l{k}: (G*H,).
            All initialised U(-1/sqrt(H), 1/sqrt(H)).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> output, h_n = nn.GRU(3, 4)(minidl.ones(5, 2, 3))
    >>> output.shape, h_n.shape
    ((5, 2, 4), (1, 2, 4))

    See docs/recurrent.md.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype)


class RNNCellBase(Module):
    """The parameters of one recurrent step, shared by RNNCell, LSTMCell and GRUCell.

    Formula: pre-activations x W_ih^T + b_ih + h W_hh^T + b_hh, G gates of H each

    Args:
        input_size (int): I.
        hidden_size (int): H.
        bias (bool): use b_ih and b_hh.
        num_chunks (int): G.
        dtype: Default: None (float32).

    Shape:
        weight_ih (G*H, I), weight_hh (G*H, H).

    Attributes:
        weight_ih (G*H, I), weight_hh (G*H, H), bias_ih and bias_hh (G*H,): U(-1/sqrt(H), 1/sqrt(H)).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> nn.RNNCellBase(3, 4, True, 2).weight_hh.shape
    (8, 4)

    See docs/recurrent.md.
    """

    def __init__(self, input_size, hidden_size, bias, num_chunks, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        dtype = dtype or np.float32
        self.weight_ih = Parameter(np.empty((num_chunks * hidden_size, input_size), dtype=dtype))
        self.weight_hh = Parameter(np.empty((num_chunks * hidden_size, hidden_size), dtype=dtype))
        if bias:
            self.bias_ih = Parameter(np.empty(num_chunks * hidden_size, dtype=dtype))
            self.bias_hh = Parameter(np.empty(num_chunks * hidden_size, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _prepare(self, input, hx, count):
        """Batch an unbatched (I,) input and its state; zeros when hx is None. Returns (input, states, unbatched)."""
        if input.ndim not in (1, 2):
            raise ValueError(f"{type(self).__name__}: expected a 1-D (unbatched) or 2-D input, got shape {input.shape}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: expected input_size={self.input_size}, got shape {input.shape}")
        unbatched = input.ndim == 1
        if unbatched:
            input = input.unsqueeze(0)
        if hx is None:
            xp = get_array_module(input.data)
            zeros = Tensor._wrap(xp.zeros((input.shape[0], self.hidden_size), dtype=input.dtype))
            states = (zeros,) * count
        else:
            states = tuple(hx) if count > 1 else (hx,)
            if unbatched:
                states = tuple(h.unsqueeze(0) for h in states)
        for h in states:
            if tuple(h.shape) != (input.shape[0], self.hidden_size):
                raise ValueError(f"{type(self).__name__}: expected a hidden state of shape "
                                 f"{(input.shape[0], self.hidden_size)}, got {tuple(h.shape)}")
        return input, states, unbatched

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(RNNCellBase):
    """One Elman RNN step (see F.rnn_tanh_cell); loop over time yourself.

    Formula: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu)

    Args:
        input_size (int): I.
        hidden_size (int): H.
        bias (bool): use b_ih and b_hh. Default: True.
        nonlinearity (str): 'tanh' or 'relu'. Default: 'tanh'.
        dtype: Default: None (float32).

    Shape:
        input (N, I) or (I,), hx (N, H) (zeros when None), output (N, H).

    Attributes:
        weight_ih (G*H, I), weight_hh (G*H, H), bias_ih and bias_hh (G*H,): U(-1/sqrt(H), 1/sqrt(H)).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> cell = nn.RNNCell(3, 4)
    >>> h = cell(minidl.ones(2, 3))
    >>> cell(minidl.ones(2, 3), h).shape
    (2, 4)

    See docs/recurrent.md.
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r}, expected 'tanh' or 'relu'")
        super().__init__(input_size, hidden_size, bias, 1, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        input, (h,), unbatched = self._prepare(input, hx, 1)
        step = F.rnn_tanh_cell if self.nonlinearity == "tanh" else F.rnn_relu_cell
        out = step(input, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return out.squeeze(0) if unbatched else out


class LSTMCell(RNNCellBase):
    """One LSTM step (see F.lstm_cell); gates i, f, g, o.

    Formula: c' = sigmoid(f) c + sigmoid(i) tanh(g); h' = sigmoid(o) tanh(c')

    Args:
        input_size (int): I.
        hidden_size (int): H.
        bias (bool): use b_ih and b_hh. Default: True.
        dtype: Default: None (float32).

    Shape:
        input (N, I) or (I,), hx (h, c) each (N, H) (zeros when None), output (h', c').

    Attributes:
        weight_ih (G*H, I), weight_hh (G*H, H), bias_ih and bias_hh (G*H,): U(-1/sqrt(H), 1/sqrt(H)).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> h, c = nn.LSTMCell(3, 4)(minidl.ones(2, 3))
    >>> h.shape, c.shape
    ((2, 4), (2, 4))

    See docs/recurrent.md.
    """

    def __init__(self, input_size, hidden_size, bias=True, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, dtype)

    def forward(self, input, hx=None):
        input, states, unbatched = self._prepare(input, hx, 2)
        h, c = F.lstm_cell(input, states, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


class GRUCell(RNNCellBase):
    """One GRU step (see F.gru_cell); gates r, z, n.

    Formula: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h' = (1 - z) n + z h

    Args:
        input_size (int): I.
        hidden_size (int): H.
        bias (bool): use b_ih and b_hh. Default: True.
        dtype: Default: None (float32).

    Shape:
        input (N, I) or (I,), hx (N, H) (zeros when None), output (N, H).

    Attributes:
        weight_ih (G*H, I), weight_hh (G*H, H), bias_ih and bias_hh (G*H,): U(-1/sqrt(H), 1/sqrt(H)).

    >>> import minidl, minidl.nn as nn
    >>> g = minidl.manual_seed(0)
    >>> nn.GRUCell(3, 4)(minidl.ones(2, 3)).shape
    (2, 4)

    See docs/recurrent.md.
    """

    def __init__(self, input_size, hidden_size, bias=True, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, dtype)

    def forward(self, input, hx=None):
        input, (h,), unbatched = self._prepare(input, hx, 1)
        out = F.gru_cell(input, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return out.squeeze(0) if unbatched else out
