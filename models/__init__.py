"""The architecture zoo: one file per family, each a config table, block classes and one-line builders.

Each builder's facts (published counts, preprocessing, class names, training recipe, weights
records) sit next to it in its family file, as a ``ModelCard`` and ``X_Weights`` records
(``minidl.models._api``).

>>> from minidl import models
>>> net = models.get_model("lenet5")
>>> models.get_model_card("resnet18").num_params
11689512
"""
from minidl.models._api import (  # noqa: F401
    ModelCard, Preset, Recipe, Weights, WeightsEnum, imagenet_classes, weights_dir,
)
from minidl.models.registry import (  # noqa: F401
    get_model, get_model_builder, get_model_card, get_model_weights, list_models, register_model, resolve_weights,
)

# Zoo I ------------------------------------------------------------------------------------
from minidl.models.alexnet import (  # noqa: F401,E402
    AlexNet, AlexNet_Weights, AlexNetV1, alexnet, alexnet_bn, alexnet_lrn,
)
from minidl.models.cifar_cnn import CifarCNN, cifar_cnn  # noqa: F401,E402
from minidl.models.googlenet import GoogLeNet, GoogLeNetOutputs, googlenet, googlenet_loss  # noqa: F401,E402
from minidl.models.inception import Inception3, InceptionOutputs, inception_v3, inception_v3_loss  # noqa: F401,E402
from minidl.models.lenet import LeNet5, lenet5  # noqa: F401,E402
from minidl.models.mlp import MLP, mlp, mlp_cifar100, mlp_gtsdb  # noqa: F401,E402
from minidl.models.vgg import (  # noqa: F401,E402
    VGG, VGG11_BN_Weights, VGG11_Weights, VGG13_BN_Weights, VGG13_Weights, VGG16_BN_Weights, VGG16_Weights,
    VGG19_BN_Weights, VGG19_Weights, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn,
)
# Zoo II -----------------------------------------------------------------------------------
from minidl.models.densenet import DenseNet, densenet121, densenet161, densenet169, densenet201  # noqa: F401,E402
from minidl.models.efficientnet import (  # noqa: F401,E402
    EfficientNet, efficientnet_b0, efficientnet_b1, efficientnet_b2, efficientnet_b3, efficientnet_b4,
    efficientnet_b5, efficientnet_b6, efficientnet_b7,
)
from minidl.models.mobilenet import (  # noqa: F401,E402
    MobileNet_V2_Weights, MobileNetV1, MobileNetV2, conv_mobilenet_v1, mobilenet_v1, mobilenet_v1_025, mobilenet_v1_050,
    mobilenet_v1_075, mobilenet_v2,
)
from minidl.models.preact_resnet import (  # noqa: F401,E402
    PreActResNet, preact_resnet18, preact_resnet34, preact_resnet50, preact_resnet101, preact_resnet152,
)
from minidl.models.resnet import (  # noqa: F401,E402
    ResNet, ResNet18_Weights, ResNet34_Weights, ResNet50_Weights, ResNet101_Weights, ResNet152_Weights,
    ResNeXt50_32X4D_Weights, ResNeXt101_32X8D_Weights, Wide_ResNet50_2_Weights, resnet18, resnet34, resnet50,
    resnet101, resnet152, resnext50_32x4d, resnext101_32x8d, wide_resnet50_2,
)
from minidl.models.xception import Xception, xception  # noqa: F401,E402
from minidl.models.detection import FasterRCNN, fasterrcnn  # noqa: F401,E402
# Zoo III ----------------------------------------------------------------------------------
from minidl.models.mobilenet_v3 import (  # noqa: F401,E402
    MobileNet_V3_Large_Weights, MobileNet_V3_Small_Weights, MobileNetV3, mobilenet_v3_large, mobilenet_v3_small,
)
from minidl.models.shufflenet import (  # noqa: F401,E402
    ShuffleNetV2, shufflenet_v2_x0_5, shufflenet_v2_x1_0, shufflenet_v2_x1_5, shufflenet_v2_x2_0,
)
from minidl.models.squeezenet import (  # noqa: F401,E402
    SqueezeNet, SqueezeNet1_0_Weights, SqueezeNet1_1_Weights, squeezenet1_0, squeezenet1_1,
)
from minidl.models.inception_v4 import InceptionV4, inception_v4  # noqa: F401,E402
from minidl.models.inception_resnet import InceptionResnetV2, inception_resnet_v2  # noqa: F401,E402
from minidl.models.cifar_resnet import (  # noqa: F401,E402
    CifarResNet, plain20_cifar, plain32_cifar, plain44_cifar, plain56_cifar, plain110_cifar, preact_resnet164_cifar,
    preact_resnet1001_cifar, resnet20_cifar, resnet32_cifar, resnet44_cifar, resnet56_cifar, resnet110_cifar,
)
from minidl.models.bn_inception import BNInception, bn_inception, inception_v2  # noqa: F401,E402
# Zoo IV: the modern architectures ---------------------------------------------------------
from minidl.models.convnext import ConvNeXt, ConvNeXt_Tiny_Weights, convnext_tiny  # noqa: F401,E402
from minidl.models.vision_transformer import (  # noqa: F401,E402
    TimmVisionTransformer, ViT_B_16_Weights, VisionTransformer, vit_b_16, vit_tiny,
)
from minidl.models.char_lm import CharLSTM, CharTransformer, char_lstm, char_transformer  # noqa: F401,E402
