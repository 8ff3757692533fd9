"""Two small character-level language models, trained by ``minidl train char_lstm|char_transformer``.

Both read a batch of character ids ``(N, T)`` and return next-character logits ``(N, T, vocab)``:
the logits at position ``t`` score the character at ``t + 1``, seeing only positions ``0..t``.

- ``char_lstm``: Embedding -> LSTM (batch_first) -> Linear.
- ``char_transformer``: a small decoder-only (GPT-style) transformer: token and learned
  position embeddings, ``num_layers`` pre-norm ``nn.TransformerEncoderLayer`` with a causal
  mask (position ``t`` attends to ``0..t``), a final LayerNorm and a Linear head.

The default vocabulary is that of the embedded Shakespeare text (76 characters,
``minidl.datasets.CharText``); the recipes are sized so that ``minidl train`` on 2 CPU cores
passes 2.0 nats/char of validation loss within about a minute.

>>> from minidl import models
>>> import minidl
>>> net = models.char_transformer(vocab_size=10, d_model=16, nhead=2, num_layers=1, block_size=8)
>>> net(minidl.zeros((2, 8), dtype=minidl.int64)).shape
(2, 8, 10)
"""
from __future__ import annotations

from minidl import nn
from minidl.creation import arange
from minidl.models._api import ModelCard, Recipe
from minidl.models.registry import register_model

__all__ = ["CharLSTM", "CharTransformer", "char_lstm", "char_transformer", "SHAKESPEARE_VOCAB"]

SHAKESPEARE_VOCAB = 76  # distinct characters of minidl.datasets' embedded text


class CharLSTM(nn.Module):
    """Embedding -> ``num_layers``-layer LSTM -> Linear; ``forward(ids, hx=None, return_state=False)``."""

    def __init__(self, vocab_size=SHAKESPEARE_VOCAB, embed_dim=32, hidden_size=192, num_layers=1, dropout=0.0):
        super().__init__()
        self.vocab_size = int(vocab_size)
        self.embed = nn.Embedding(self.vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(hidden_size, self.vocab_size)

    def forward(self, ids, hx=None, return_state=False):
        out, state = self.lstm(self.embed(ids), hx)
        logits = self.head(out)
        return (logits, state) if return_state else logits


class CharTransformer(nn.Module):
    """Token + position embeddings -> causal pre-norm encoder layers -> LayerNorm -> Linear.

    Args:
        vocab_size: number of characters.
        d_model, nhead, num_layers, dim_feedforward, dropout: the layers' sizes.
        block_size: the longest context (number of learned positions).
    """

    def __init__(self, vocab_size=SHAKESPEARE_VOCAB, d_model=128, nhead=4, num_layers=2, dim_feedforward=None,
                 dropout=0.0, block_size=128):
        super().__init__()
        self.vocab_size, self.block_size = int(vocab_size), int(block_size)
        self.tok_embed = nn.Embedding(self.vocab_size, d_model)
        self.pos_embed = nn.Embedding(self.block_size, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=dim_feedforward or 4 * d_model,
                                           dropout=dropout, activation="relu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, self.vocab_size)
        for p in self.tok_embed.parameters():  # GPT's small embedding init: N(0, 0.02)
            nn.init.normal_(p, std=0.02)
        for p in self.pos_embed.parameters():
            nn.init.normal_(p, std=0.02)

    def forward(self, ids):
        n_steps = ids.shape[-1]
        if n_steps > self.block_size:
            raise ValueError(f"CharTransformer: {n_steps} positions, more than block_size={self.block_size}")
        x = self.tok_embed(ids) + self.pos_embed(arange(n_steps))
        mask = nn.Transformer.generate_square_subsequent_mask(n_steps)
        x = self.blocks(x, mask=mask, is_causal=True)
        return self.head(self.norm(x))


# the recipes: Adam on random windows; an "epoch" is ``steps_per_epoch`` steps and one validation round,
# and ``time_limit`` (seconds) ends the run early (minidl/cli/train_text.py). Measured on 2 shared CPU
# cores: char_lstm passes 2.0 nats/char of validation loss after about 200 steps (30 s); the
# transformer sits longer on the 2.5 nats/char plateau (bigram statistics) before attention helps:
# on 32-character windows at lr 2e-3 it passed 2.0 after about 900 steps (85 s; 64-character windows
# at 3e-3: 800 steps, 213 s; at 6e-3 it stays on the plateau).
_LSTM_RECIPE = Recipe(epochs=12, batch_size=32, lr=1e-2, optimizer="adam", weight_decay=0.0, scheduler="none",
                      clip_grad_norm=1.0, model_kwargs={"seq_len": 32, "steps_per_epoch": 50, "time_limit": 60})
_TRANSFORMER_RECIPE = Recipe(epochs=40, batch_size=32, lr=2e-3, optimizer="adam", weight_decay=0.0,
                             scheduler="none", clip_grad_norm=1.0,
                             model_kwargs={"seq_len": 32, "steps_per_epoch": 50, "time_limit": 240})


@register_model(card=ModelCard(input_size=(32,), recipe=_LSTM_RECIPE))
def char_lstm(vocab_size=SHAKESPEARE_VOCAB, embed_dim=32, hidden_size=192, num_layers=1, dropout=0.0):
    """Character-level LSTM language model (:class:`CharLSTM`)."""
    return CharLSTM(vocab_size, embed_dim, hidden_size, num_layers, dropout)


@register_model(card=ModelCard(input_size=(32,), recipe=_TRANSFORMER_RECIPE))
def char_transformer(vocab_size=SHAKESPEARE_VOCAB, d_model=128, nhead=4, num_layers=2, dim_feedforward=None,
                     dropout=0.0, block_size=128):
    """Small decoder-only character transformer (:class:`CharTransformer`)."""
    return CharTransformer(vocab_size, d_model, nhead, num_layers, dim_feedforward, dropout, block_size)


char_lstm.task = char_transformer.task = "text"
