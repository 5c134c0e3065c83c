"""The model zoo: LeNet-5, AlexNet, VGG, ResNet (torchvision's and the CIFAR ones), a small U-Net
and YOLO v1 detectors, named as in torchvision so state_dicts map one to one.
``get_model(name, **kwargs)`` builds one by name."""

from filterbank.models.alexnet import AlexNet, alexnet
from filterbank.models.lenet import LeNet5, lenet5
from filterbank.models.registry import available_models, get_model, model_task
from filterbank.models.resnet import (
    BasicBlock,
    Bottleneck,
    CifarResNet,
    ResNet,
    resnet8,
    resnet18,
    resnet20,
    resnet34,
    resnet50,
)
from filterbank.models.simple import SimpleCNN, simple_cnn
from filterbank.models.torch_weights import (
    TorchLoadReport,
    load_torch_state_dict,
    read_torch_safetensors,
)
from filterbank.models.unet import UNet, unet
from filterbank.models.vgg import (
    VGG,
    vgg11,
    vgg11_bn,
    vgg13,
    vgg13_bn,
    vgg16,
    vgg16_bn,
    vgg19,
    vgg19_bn,
)
from filterbank.models.yolo import TinyYOLO, YOLOv1, tiny_yolo, yolo_v1

__all__ = [
    "VGG", "AlexNet", "BasicBlock", "Bottleneck", "LeNet5", "ResNet", "UNet", "alexnet",
    "available_models", "get_model", "lenet5", "resnet18", "resnet34", "resnet50", "unet",
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "SimpleCNN", "simple_cnn", "TinyYOLO", "YOLOv1", "tiny_yolo", "yolo_v1", "model_task",
    "load_torch_state_dict", "read_torch_safetensors", "TorchLoadReport",
    "CifarResNet", "resnet8", "resnet20",
]
