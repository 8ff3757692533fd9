"""Vision Transformers: torchvision's ``vit_b_16`` and timm's ``vit_tiny_patch16_224`` (as ``vit_tiny``).

Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words". The image is cut into 16x16 patches,
each linearly projected to a D-dimensional token (a 16x16 stride-16 convolution); a learned class
token is put in front and a learned position embedding added; a stack of pre-norm Transformer
encoder blocks follows,

    x = x + attention(LayerNorm(x));   x = x + MLP(LayerNorm(x))   (MLP: Linear(D, 4D), GELU, Linear(4D, D))

then a final LayerNorm, and the classifier reads the class token's output.

Two layouts of the same network, each with its reference's state_dict names so that its weights
load as they are:

- ``VisionTransformer`` (torchvision): ``conv_proj``, ``class_token``, ``encoder.pos_embedding``,
  ``encoder.layers.encoder_layer_N.{ln_1, self_attention, ln_2, mlp.0, mlp.3}`` (the attention is
  an ``nn.MultiheadAttention``), ``encoder.ln``, ``heads.head``. ``vit_b_16``: D = 768, 12 layers,
  12 heads, MLP 3072: 86,567,656 parameters, 17.56 G multiply-accumulates at 224x224 (torchvision's
  "17.564 GFLOPS": the Conv/Linear layers 16.85 G plus the attention products Q K^T and A V, 0.72 G;
  ``minidl.summary`` counts both).
- ``TimmVisionTransformer`` (timm): ``patch_embed.proj``, ``cls_token``, ``pos_embed``,
  ``blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``, ``norm``, ``head``; the
  attention's q, k, v come from one fused Linear (``qkv``). ``vit_tiny`` (timm's
  ``vit_tiny_patch16_224``): D = 192, 12 layers, 3 heads: 5,717,416 parameters, 1.25 G
  multiply-accumulates at 224x224 as ``minidl.summary`` counts them (the same convention as
  torchvision's figure: the Conv/Linear layers 1.07 G, plus Q K^T and A V of the
  ``F.scaled_dot_product_attention`` call, 2 x 12 x 197^2 x 192 = 0.18 G).

Both use LayerNorm with eps=1e-6 and the exact (erf) GELU.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from functools import partial

from minidl import nn
from minidl.creation import zeros
from minidl.nn import functional as F
from minidl.ops import StochasticDepth
from minidl.tensor import cat

from minidl.models._api import ModelCard, Preset, WeightsEnum, torchvision_weights
from minidl.models.registry import register_model

__all__ = ["Attention", "Block", "Encoder", "EncoderBlock", "MLPBlock", "Mlp", "PatchEmbed", "TimmVisionTransformer",
           "ViT_B_16_Weights", "VisionTransformer", "vit_b_16", "vit_tiny"]


# ----------------------------------------------------------------------------- torchvision's layout
class MLPBlock(nn.Sequential):
    """Linear(D, M) -> GELU -> Dropout -> Linear(M, D) -> Dropout (keys ``0`` and ``3``, as torchvision)."""

    def __init__(self, in_dim, mlp_dim, dropout):
        super().__init__(nn.Linear(in_dim, mlp_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_dim, in_dim),
                         nn.Dropout(dropout))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.normal_(m.bias, std=1e-6)


class EncoderBlock(nn.Module):
    """Pre-norm Transformer block: ``x + attn(ln_1(x))``, then ``+ mlp(ln_2(.))``, on (N, L, D)."""

    def __init__(self, num_heads, hidden_dim, mlp_dim, dropout, attention_dropout,
                 norm_layer=partial(nn.LayerNorm, eps=1e-6)):
        super().__init__()
        self.num_heads = num_heads
        self.ln_1 = norm_layer(hidden_dim)
        self.self_attention = nn.MultiheadAttention(hidden_dim, num_heads, dropout=attention_dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = norm_layer(hidden_dim)
        self.mlp = MLPBlock(hidden_dim, mlp_dim, dropout)

    def forward(self, input):
        if input.ndim != 3:
            raise ValueError(f"EncoderBlock: expected (batch_size, seq_length, hidden_dim), got {tuple(input.shape)}")
        x = self.ln_1(input)
        x, _ = self.self_attention(x, x, x, need_weights=False)
        x = self.dropout(x) + input
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    """Adds the position embedding, runs the blocks, and normalises the output."""

    def __init__(self, seq_length, num_layers, num_heads, hidden_dim, mlp_dim, dropout, attention_dropout,
                 norm_layer=partial(nn.LayerNorm, eps=1e-6)):
        super().__init__()
        self.pos_embedding = nn.Parameter(zeros(1, seq_length, hidden_dim))
        nn.init.normal_(self.pos_embedding, std=0.02)  # from BERT
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.Sequential(OrderedDict(
            (f"encoder_layer_{i}", EncoderBlock(num_heads, hidden_dim, mlp_dim, dropout, attention_dropout, norm_layer))
            for i in range(num_layers)))
        self.ln = norm_layer(hidden_dim)

    def forward(self, input):
        return self.ln(self.layers(self.dropout(input + self.pos_embedding)))


class VisionTransformer(nn.Module):
    """torchvision's ``VisionTransformer``: patchify conv, class token, encoder, ``heads.head``.

    The input must be ``image_size`` x ``image_size`` (the position embedding has one entry per patch).
    """

    def __init__(self, image_size, patch_size, num_layers, num_heads, hidden_dim, mlp_dim, dropout=0.0,
                 attention_dropout=0.0, num_classes=1000, representation_size=None,
                 norm_layer=partial(nn.LayerNorm, eps=1e-6), in_channels=3):
        super().__init__()
        if image_size % patch_size != 0:
            raise ValueError(f"VisionTransformer: image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.image_size, self.patch_size, self.hidden_dim = image_size, patch_size, hidden_dim
        self.num_classes = num_classes
        self.conv_proj = nn.Conv2d(in_channels, hidden_dim, kernel_size=patch_size, stride=patch_size)
        seq_length = (image_size // patch_size) ** 2 + 1  # the patches and the class token
        self.class_token = nn.Parameter(zeros(1, 1, hidden_dim))
        self.encoder = Encoder(seq_length, num_layers, num_heads, hidden_dim, mlp_dim, dropout, attention_dropout,
                               norm_layer)
        self.seq_length = seq_length
        heads = OrderedDict()
        if representation_size is None:
            heads["head"] = nn.Linear(hidden_dim, num_classes)
        else:
            heads["pre_logits"] = nn.Linear(hidden_dim, representation_size)
            heads["act"] = nn.Tanh()
            heads["head"] = nn.Linear(representation_size, num_classes)
        self.heads = nn.Sequential(heads)

        # torchvision's initialisation: LeCun-normal patch projection, zero classifier
        fan_in = in_channels * patch_size * patch_size
        nn.init.trunc_normal_(self.conv_proj.weight, std=math.sqrt(1 / fan_in))
        nn.init.zeros_(self.conv_proj.bias)
        if representation_size is not None:
            nn.init.trunc_normal_(self.heads.pre_logits.weight, std=math.sqrt(1 / hidden_dim))
            nn.init.zeros_(self.heads.pre_logits.bias)
        nn.init.zeros_(self.heads.head.weight)
        nn.init.zeros_(self.heads.head.bias)

    def _process_input(self, x):
        """(N, C, H, W) -> (N, H/p * W/p, D): one token per patch, in row-major order."""
        n, _, h, w = x.shape
        if h != self.image_size or w != self.image_size:
            raise ValueError(f"VisionTransformer: expected {self.image_size}x{self.image_size} images, got {h}x{w}")
        x = self.conv_proj(x)  # (N, D, H/p, W/p)
        return x.reshape(n, self.hidden_dim, -1).permute(0, 2, 1)

    def forward(self, x):
        x = self._process_input(x)
        cls = self.class_token.expand(x.shape[0], -1, -1)
        x = self.encoder(cat([cls, x], dim=1))  # (N, 1 + patches, D)
        return self.heads(x[:, 0])  # the class token's output


_RECIPE = "https://github.com/pytorch/vision/tree/main/references/classification#vit_b_16"


class ViT_B_16_Weights(WeightsEnum):
    # the SWAG fine-tuned weights (384x384, vit_b_16_swag-9ac1b537.pth) are not recorded here
    IMAGENET1K_V1 = torchvision_weights("vit_b_16-c867db91.pth", 86_567_656, _RECIPE, macs=17.564e9)
    DEFAULT = IMAGENET1K_V1


@register_model(card=ModelCard(weights=ViT_B_16_Weights))
def vit_b_16(**kwargs):
    """ViT-B/16 (Dosovitskiy et al. 2021, Table 1): 16x16 patches, D = 768, 12 layers, 12 heads, MLP 3072."""
    kwargs.setdefault("image_size", 224)
    return VisionTransformer(patch_size=16, num_layers=12, num_heads=12, hidden_dim=768, mlp_dim=3072, **kwargs)


# ----------------------------------------------------------------------------- timm's layout
class PatchEmbed(nn.Module):
    """The patch projection: a p x p stride-p convolution, flattened to (N, patches, D)."""

    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768):
        super().__init__()
        self.img_size, self.patch_size = img_size, patch_size
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        if x.shape[2] != self.img_size or x.shape[3] != self.img_size:
            raise ValueError(f"PatchEmbed: expected {self.img_size}x{self.img_size} images, got "
                             f"{x.shape[2]}x{x.shape[3]}")
        x = self.proj(x)  # (N, D, H/p, W/p)
        return x.flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with one fused ``qkv`` projection, then ``proj`` (timm's ``Attention``)."""

    def __init__(self, dim, num_heads=8, qkv_bias=True, attn_drop=0.0, proj_drop=0.0):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"Attention: dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        n, length, dim = x.shape
        # (N, L, 3D) -> (3, N, heads, L, head_dim): q, k and v, each split into heads
        qkv = self.qkv(x).reshape(n, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        # softmax(q k^T / sqrt(head_dim)) v, per head
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        x = x.transpose(1, 2).reshape(n, length, dim)  # the heads side by side again
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    """fc1 -> GELU -> dropout -> fc2 -> dropout (timm's ``Mlp``)."""

    def __init__(self, in_features, hidden_features, drop=0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x):
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class Block(nn.Module):
    """``x + drop_path(attn(norm1(x)))``, then ``+ drop_path(mlp(norm2(.)))`` (timm's ``Block``)."""

    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=True, proj_drop=0.0, attn_drop=0.0, drop_path=0.0,
                 norm_layer=partial(nn.LayerNorm, eps=1e-6)):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop)
        self.drop_path1 = StochasticDepth(drop_path, "row")
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=proj_drop)
        self.drop_path2 = StochasticDepth(drop_path, "row")

    def forward(self, x):
        x = x + self.drop_path1(self.attn(self.norm1(x)))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


class TimmVisionTransformer(nn.Module):
    """timm's ``VisionTransformer`` (class token, learned position embedding, token pooling)."""

    def __init__(self, img_size=224, patch_size=16, in_chans=3, num_classes=1000, embed_dim=768, depth=12,
                 num_heads=12, mlp_ratio=4.0, qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0):
        super().__init__()
        self.num_classes = num_classes
        self.cls_token = nn.Parameter(zeros(1, 1, embed_dim))
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.pos_embed = nn.Parameter(zeros(1, self.patch_embed.num_patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        # stochastic depth grows linearly from 0 to drop_path_rate over the blocks
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate,
                                            rates[i]) for i in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes)

        # timm's initialisation ('jax'-free default): truncated N(0, 0.02) for the embeddings and Linear layers
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.patch_embed(x)  # (N, patches, D)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = self.pos_drop(cat([cls, x], dim=1) + self.pos_embed)
        x = self.norm(self.blocks(x))
        return self.head(self.head_drop(x[:, 0]))  # the class token's output


@register_model(card=ModelCard(num_params=5_717_416, macs=1_253_683_200, transforms=Preset(
    248, 224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bicubic")))
def vit_tiny(**kwargs):
    """ViT-Ti/16 (timm's ``vit_tiny_patch16_224``, Touvron et al.'s DeiT-Ti size): D = 192, 12 layers, 3 heads."""
    return TimmVisionTransformer(patch_size=16, embed_dim=192, depth=12, num_heads=3, **kwargs)
