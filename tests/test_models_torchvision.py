"""Every architecture that torchvision also has (timm's where only timm has it): the default model's
state_dict keys, their order and every shape equal the reference's, so its checkpoints load as they are.
(test_models_zoo1/2 check a few of them in more detail, and keys derived from the sources without them.)"""
import pytest

from minidl import models

# minidl's architectures with a torchvision builder of the same name (test_the_list_is_complete keeps
# this list equal to the intersection of both registries)
TORCHVISION_ARCHS = [
    "alexnet", "convnext_tiny", "densenet121", "densenet161", "densenet169", "densenet201", "efficientnet_b0", "efficientnet_b1",
    "efficientnet_b2", "efficientnet_b3", "efficientnet_b4", "efficientnet_b5", "efficientnet_b6",
    "efficientnet_b7", "googlenet", "inception_v3", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
    "resnet101", "resnet152", "resnet18", "resnet34", "resnet50", "resnext101_32x8d", "resnext50_32x4d",
    "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "squeezenet1_0",
    "squeezenet1_1", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "vit_b_16", "wide_resnet50_2",
]


def test_the_list_is_complete():
    pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    theirs = set(torchvision.models.list_models(module=torchvision.models))
    assert sorted(set(models.list_models()) & theirs) == sorted(TORCHVISION_ARCHS)


@pytest.mark.parametrize("name", TORCHVISION_ARCHS)
def test_state_dict_layout_equals_torchvision(no_init, name):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    kwargs = {"init_weights": False} if name in ("googlenet", "inception_v3") else {}
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        reference = getattr(torchvision.models, name)(**kwargs)
    theirs = [(k, tuple(v.shape)) for k, v in reference.state_dict().items()]
    ours = [(k, tuple(v.shape)) for k, v in models.get_model(name).state_dict().items()]
    assert ours == theirs


# timm's names for the architectures torchvision does not have
TIMM_ARCHS = [("preact_resnet18", "resnetv2_18"), ("preact_resnet34", "resnetv2_34"), ("preact_resnet50", "resnetv2_50"),
              ("preact_resnet101", "resnetv2_101"), ("preact_resnet152", "resnetv2_152"),
              ("mobilenet_v1", "mobilenetv1_100"), ("xception", "legacy_xception"), ("inception_v4", "inception_v4"),
              ("inception_resnet_v2", "inception_resnet_v2"),
              ("vit_tiny", "vit_tiny_patch16_224")]


@pytest.mark.parametrize("name, timm_name", TIMM_ARCHS)
def test_state_dict_layout_equals_timm(no_init, name, timm_name):
    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        reference = timm.create_model(timm_name)
    theirs = [(k, tuple(v.shape)) for k, v in reference.state_dict().items()]
    ours = [(k, tuple(v.shape)) for k, v in models.get_model(name).state_dict().items()]
    assert ours == theirs
