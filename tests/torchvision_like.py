"""PyTorch modules with torchvision's structure and state-dict names (torchvision itself is not needed), for
tests/test_interop.py. Importing this module needs PyTorch."""
from collections import OrderedDict

import torch
from torch import nn


def randomize_torch(module, seed=0):
    """Random weights everywhere and random BatchNorm statistics (fresh ones are the identity)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif name.endswith(("weight", "running_mean", "bias")) and tensor.ndim == 1:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.3 + (name.endswith("weight")))
            elif tensor.ndim > 1:  # fan-in scaling keeps deep networks' activations in range
                fan_in = tensor[0].numel() if not name.endswith("layer_scale") else 1
                tensor.copy_(torch.randn(tensor.shape, generator=generator) / fan_in ** 0.5)
            else:
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return module.eval()


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + identity)


class TorchResNet(nn.Module):
    """torchvision.models.ResNet's structure and names."""

    def __init__(self, block, layers, classes, groups=1, width_per_group=64):
        super().__init__()
        self.inplanes, self.groups, self.base_width = 64, groups, width_per_group
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, groups=self.groups, base_width=self.base_width)
                   for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def torch_vgg_features(config):
    layers, channels = [], 3
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU()]
            channels = item
    return nn.Sequential(*layers)


class TorchVGG(nn.Module):
    """torchvision's VGG names (features.<i>, classifier.0/3/6); on 32x32 inputs the map before the classifier
    is 1x1 (torchvision's adaptive pooling to 7x7 left out, so classifier.0 reads 512 features)."""

    def __init__(self, config, classes, hidden=4096):
        super().__init__()
        self.features = torch_vgg_features(config)
        self.classifier = nn.Sequential(nn.Linear(512, hidden), nn.ReLU(), nn.Dropout(), nn.Linear(hidden, hidden),
                                        nn.ReLU(), nn.Dropout(), nn.Linear(hidden, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class TorchVGGStyle(nn.Module):
    """A small VGG-style net whose classifier reads a 3x4x6 map flattened in PyTorch's (C, H, W) order."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(2, 5, 3, padding=1), nn.BatchNorm2d(5), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(5, 6, 3, padding=1), nn.ReLU())
        self.classifier = nn.Sequential(nn.Linear(6 * 3 * 4, 10), nn.ReLU(), nn.Dropout(), nn.Linear(10, 3))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class TorchDepthwiseNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
            nn.Conv2d(8, 16, 3, 1, 1, groups=8, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),  # depthwise, multiplier 2
            nn.Conv2d(16, 12, 1), nn.BatchNorm2d(12), nn.ReLU(),
            nn.ConvTranspose2d(12, 6, 3, stride=2, padding=1, output_padding=1, groups=2))
        self.head = nn.Linear(6, 4)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


class DenseLayer(nn.Module):
    def __init__(self, channels, growth, width=4):
        super().__init__()
        self.norm1, self.relu1 = nn.BatchNorm2d(channels), nn.ReLU()
        self.conv1 = nn.Conv2d(channels, width * growth, 1, bias=False)
        self.norm2, self.relu2 = nn.BatchNorm2d(width * growth), nn.ReLU()
        self.conv2 = nn.Conv2d(width * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        y = self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))
        return torch.cat([x, y], 1)


class TorchDenseNet(nn.Module):
    """torchvision.models.DenseNet's names: features.conv0/norm0, denseblock<b>.denselayer<i>, transition<b>."""

    def __init__(self, blocks=(6, 12, 24, 16), growth=32, classes=6):
        super().__init__()
        channels = 2 * growth
        features = [("conv0", nn.Conv2d(3, channels, 7, 2, 3, bias=False)), ("norm0", nn.BatchNorm2d(channels)),
                    ("relu0", nn.ReLU()), ("pool0", nn.MaxPool2d(3, 2, 1))]
        for b, count in enumerate(blocks, start=1):
            block = nn.Sequential()
            for i in range(1, count + 1):
                block.add_module(f"denselayer{i}", DenseLayer(channels, growth))
                channels += growth
            features.append((f"denseblock{b}", block))
            if b < len(blocks):
                features.append((f"transition{b}", nn.Sequential()))
                transition = features[-1][1]
                transition.add_module("norm", nn.BatchNorm2d(channels))
                transition.add_module("relu", nn.ReLU())
                transition.add_module("conv", nn.Conv2d(channels, channels // 2, 1, bias=False))
                transition.add_module("pool", nn.AvgPool2d(2, 2))
                channels //= 2
        features.append(("norm5", nn.BatchNorm2d(channels)))
        self.features = nn.Sequential(OrderedDict(features))
        self.classifier = nn.Linear(channels, classes)

    def forward(self, x):
        return self.classifier(torch.relu(self.features(x)).mean(dim=(2, 3)))


class CodeRunningPayload:
    """Unpickling this runs code: what weights_only refuses."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


class Permute(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(*self.dims)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of (N, C, H, W)."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(dim, dim, 7, padding=3, groups=dim), Permute([0, 2, 3, 1]),
                                   nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, 4 * dim), nn.GELU(),
                                   nn.Linear(4 * dim, dim), Permute([0, 3, 1, 2]))
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), 1e-6))

    def forward(self, x):
        return self.layer_scale * self.block(x) + x


class TorchConvNeXt(nn.Module):
    """torchvision.models.ConvNeXt's names: features.0 the stem, odd indices the stages, even ones (from 2) the
    downsampling layers; classifier.0 the LayerNorm, classifier.2 the Linear."""

    def __init__(self, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768), classes=5):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0], eps=1e-6))]
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            layers.append(nn.Sequential(*(CNBlock(dim) for _ in range(depth))))
            if i + 1 < len(dims):
                layers.append(nn.Sequential(LayerNorm2d(dim, eps=1e-6), nn.Conv2d(dim, dims[i + 1], 2, 2)))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(LayerNorm2d(dims[-1], eps=1e-6), nn.Flatten(1), nn.Linear(dims[-1], classes))

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3), keepdim=True))
