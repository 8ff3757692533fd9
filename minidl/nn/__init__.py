"""``minidl.nn``: Modules, Parameters, layers, losses, ``functional`` and ``init``."""
from . import functional, init, utils
from .layers import (
    ELU, GELU, SELU, AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, BCELoss,
    BCEWithLogitsLoss, Conv2d, CrossEntropyLoss, Dropout, Dropout2d, Flatten, Hardsigmoid, Hardswish, Identity,
    L1Loss, LeakyReLU, Linear, LocalResponseNorm, LogSoftmax, MaxPool2d, ModuleDict, ModuleList, MSELoss, NLLLoss,
    ReLU, ReLU6, Sequential, Sigmoid, SiLU, SmoothL1Loss, Softmax, Softplus, Tanh,
)
from .layers import CELU, GLU, Hardshrink, Hardtanh, LogSigmoid, Mish, Softmin, Softshrink, Softsign, Tanhshrink
from .layers import (  # layers for issue 15/16
    Conv1d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, MaxPool1d, MaxPool3d, AvgPool1d,
    AvgPool3d, AdaptiveAvgPool1d, AdaptiveMaxPool1d, MaxUnpool1d, MaxUnpool2d, MaxUnpool3d, Upsample,
    UpsamplingNearest2d, UpsamplingBilinear2d, PixelShuffle, PixelUnshuffle, Unfold, Fold, Unflatten,
    ZeroPad1d, ZeroPad2d, ZeroPad3d, ConstantPad1d, ConstantPad2d, ConstantPad3d, ReflectionPad1d,
    ReflectionPad2d, ReflectionPad3d, ReplicationPad1d, ReplicationPad2d, ReplicationPad3d, CircularPad1d,
    CircularPad2d, CircularPad3d, AdaptiveAvgPool3d, AdaptiveMaxPool3d, LPPool1d, LPPool2d, LPPool3d, ChannelShuffle,
)
from .module import Module, Parameter
from .freeze import freeze, head_names, replace_head, unfreeze
# issue 16: normalisation beyond batch norm, Embedding, recurrent layers
from .normalization import GroupNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, LayerNorm, RMSNorm
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from .sparse import Embedding, EmbeddingBag
# attention and transformer layers (issue 16)
from .attention import MultiheadAttention
from .transformer import (
    Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer,
)
# data parallelism across processes (issue 19): nn.parallel.DistributedDataParallel, nn.SyncBatchNorm
from . import parallel
from .parallel import SyncBatchNorm
