"""torchvision's state-dict key for each parameter of the zoo's architectures that torchvision publishes:
ResNet-18/34/50/101/152, ResNeXt-50 32x4d, VGG-11/16/19, DenseNet-121/169/201 and ConvNeXt-T/S. The zoo
names its layers after the same structure (convkit.models), so one rule per layer name gives the module."""
from __future__ import annotations

import re
from typing import Callable, Optional

from ..models.vgg import VGG_CONFIGS

# convkit weight -> PyTorch parameter (LayerScale's gamma is the module's own parameter: no suffix).
SUFFIXES = {"kernel": "weight", "depthwise_kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
            "moving_mean": "running_mean", "moving_variance": "running_var"}

Rule = tuple[str, Callable[[re.Match], str]]

RESNET: list[Rule] = [
    (r"stem_conv", lambda m: "conv1"),
    (r"stem_bn", lambda m: "bn1"),
    (r"stage(\d+)_block(\d+)_(\d)_(conv|bn)", lambda m: f"layer{m[1]}.{int(m[2]) - 1}.{m[4]}{m[3]}"),
    (r"stage(\d+)_block(\d+)_proj_(conv|bn)",
     lambda m: f"layer{m[1]}.{int(m[2]) - 1}.downsample.{0 if m[3] == 'conv' else 1}"),
    (r"predictions", lambda m: "fc"),
]

DENSENET: list[Rule] = [
    (r"stem_(conv|bn)", lambda m: f"features.{'conv' if m[1] == 'conv' else 'norm'}0"),
    (r"block(\d+)_layer(\d+)_(\d)_(conv|bn)",
     lambda m: f"features.denseblock{m[1]}.denselayer{m[2]}.{'conv' if m[4] == 'conv' else 'norm'}{m[3]}"),
    (r"transition(\d+)_(conv|bn)", lambda m: f"features.transition{m[1]}.{'conv' if m[2] == 'conv' else 'norm'}"),
    (r"final_bn", lambda m: "features.norm5"),
    (r"predictions", lambda m: "classifier"),
]

CONVNEXT_BLOCK = {"dwconv": "block.0", "norm": "block.2", "pwconv1": "block.3", "pwconv2": "block.5",
                  "layer_scale": "layer_scale"}
CONVNEXT: list[Rule] = [
    (r"stem_(conv|norm)", lambda m: f"features.0.{0 if m[1] == 'conv' else 1}"),
    (r"stage(\d+)_block(\d+)_(dwconv|norm|pwconv1|pwconv2|layer_scale)",
     lambda m: f"features.{2 * int(m[1]) - 1}.{int(m[2]) - 1}.{CONVNEXT_BLOCK[m[3]]}"),
    (r"downsample(\d+)_(norm|conv)", lambda m: f"features.{2 * int(m[1]) - 2}.{0 if m[2] == 'norm' else 1}"),
    (r"head_norm", lambda m: "classifier.0"),
    (r"predictions", lambda m: "classifier.2"),
]


def _vgg(depth: int) -> list[Rule]:
    """torchvision's VGG: features.<index> counts Conv2d, ReLU and MaxPool2d modules; classifier.0/3/6."""
    names, index, block, conv = {}, 0, 1, 1
    for item in VGG_CONFIGS[depth]:
        if item == "M":
            index, block, conv = index + 1, block + 1, 1
            continue
        names[f"block{block}_conv{conv}"] = f"features.{index}"
        index, conv = index + 2, conv + 1
    names.update(fc1="classifier.0", fc2="classifier.3", predictions="classifier.6")
    return [(re.escape(layer), lambda m, module=module: module) for layer, module in names.items()]


def _rules(model_name: str) -> Optional[list[Rule]]:
    if re.fullmatch(r"resnet(18|34|50|101|152)|resnext50_32x4d", model_name):
        return RESNET
    vgg = re.fullmatch(r"vgg(11|16|19)", model_name)
    if vgg:
        return _vgg(int(vgg[1]))
    if re.fullmatch(r"densenet\d+", model_name):
        return DENSENET
    if re.fullmatch(r"convnext_(tiny|small)", model_name):
        return CONVNEXT
    return None


def torchvision_keys(model) -> dict[str, str]:
    """{convkit parameter name: torchvision key} for a zoo model torchvision publishes (by the model's name),
    {} for any other model."""
    rules = _rules(model.name)
    if rules is None:
        return {}
    keys = {}
    for p in model.parameters():
        layer_name, weight = p.name.rsplit("/", 1)
        for pattern, module in rules:
            match = re.fullmatch(pattern, layer_name)
            if match and weight in SUFFIXES:
                own_parameter = weight == "gamma" and layer_name.endswith("layer_scale")
                keys[p.name] = module(match) + ("" if own_parameter else "." + SUFFIXES[weight])
                break
    return keys
