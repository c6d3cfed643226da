"""The model zoo: trainable parameter counts against the published figures, forward shapes, a training step.

The counts are the trainable parameters (Keras' "Trainable params", equal to torchvision's count, which
leaves BatchNorm's running statistics out). Where a model has no single published figure (LeNet-1 with
full connections, GoogLeNet as in the paper's table with biases, the CIFAR variants) the figure comes from
the layer-by-layer arithmetic written out in test_counts_by_arithmetic below.
"""
from __future__ import annotations

import numpy as np
import pytest

import convkit
from convkit import models, ops

PUBLISHED_TRAINABLE = [
    ("lenet5_modern", dict(input_shape=(28, 28, 1)), 61_706),          # the course's Keras summary
    ("lenet5", dict(), 61_706),                                          # LeNet-5 with a full C3 table
    ("alexnet", dict(), 60_965_224),                                     # two-tower AlexNet
    ("vgg11", dict(), 132_863_336),
    ("vgg16", dict(), 138_357_544),
    ("vgg19", dict(), 143_667_240),
    ("resnet18", dict(), 11_689_512),
    ("resnet34", dict(), 21_797_672),
    ("resnet50", dict(), 25_557_032),
    ("resnet101", dict(), 44_549_160),
    ("resnet152", dict(), 60_192_808),
    ("resnext50_32x4d", dict(), 25_028_904),
    ("se_resnet50", dict(), 28_088_024),                                 # timm's seresnet50
    ("mobilenet", dict(), 4_231_976),                                    # Keras MobileNet(alpha=1.0)
    ("xception", dict(), 22_855_952),                                    # Keras Xception
    ("densenet121", dict(), 7_978_856),
    ("convnext_tiny", dict(), 28_589_128),
]

HEAVY = {"vgg11", "vgg16", "vgg19", "alexnet", "resnet101", "resnet152"}


def trainable_count(model) -> int:
    return sum(p.size for p in model.trainable_parameters())


@pytest.mark.parametrize("name, kwargs, expected", PUBLISHED_TRAINABLE, ids=[c[0] for c in PUBLISHED_TRAINABLE])
def test_published_parameter_counts(name, kwargs, expected):
    model = models.get(name, **kwargs)
    assert trainable_count(model) == expected


def _cbn(c_in, c_out, k):  # conv without bias + BatchNorm's gamma and beta
    return k * k * c_in * c_out + 2 * c_out


def _cb(c_in, c_out, k):  # conv with bias
    return k * k * c_in * c_out + c_out


def test_counts_by_arithmetic():
    # LeNet-1 on 28x28: 4@5x5 -> 12@5x5 (full connections) -> dense on the 4x4x12 map.
    assert trainable_count(models.lenet1()) == _cb(1, 4, 5) + _cb(4, 12, 5) + 4 * 4 * 12 * 10 + 10
    # GoogLeNet: Table 1 of the paper, weights and biases.
    modules = models.googlenet.__globals__["INCEPTION_MODULES"]
    total, c = _cb(3, 64, 7) + _cb(64, 64, 1) + _cb(64, 192, 3), 192
    for key in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"):
        n1, r3, n3, r5, n5, proj = modules[key]
        total += _cb(c, n1, 1) + _cb(c, r3, 1) + _cb(r3, n3, 3) + _cb(c, r5, 1) + _cb(r5, n5, 5) + _cb(c, proj, 1)
        c = n1 + n3 + n5 + proj
    assert trainable_count(models.googlenet()) == total + c * 1000 + 1000
    # He et al.'s CIFAR ResNet-20 with projection shortcuts.
    total, c = _cbn(3, 16, 3), 16
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            total += _cbn(c, filters, 3) + _cbn(filters, filters, 3)
            if c != filters:
                total += _cbn(c, filters, 1)
            c = filters
    assert trainable_count(models.resnet_cifar(20)) == total + 64 * 10 + 10
    # VGG-11 for 32x32 with BatchNorm.
    total, c = 0, 3
    for item in models.vgg.__globals__["VGG_CONFIGS"][11]:
        if item != "M":
            total, c = total + _cbn(c, item, 3), item
    assert trainable_count(models.vgg_cifar(11)) == total + 512 * 10 + 10


def test_batchnorm_statistics_are_the_non_trainable_parameters():
    model = models.mobilenet()
    non_trainable = model.count_params() - trainable_count(model)
    assert non_trainable == 21_888  # Keras' "Non-trainable params" for MobileNet(alpha=1.0)


SMALL_VARIANTS = [
    ("lenet1", dict(input_shape=(28, 28, 1))),
    ("lenet5", dict(input_shape=(32, 32, 1))),
    ("lenet5_modern", dict(input_shape=(8, 8, 1))),
    ("vgg_cifar", dict(width=0.125)),
    ("resnet_cifar", dict(depth=8, width=4)),
    ("resnet18", dict(input_shape=(32, 32, 3), classes=5)),
    ("resnext50_32x4d", dict(input_shape=(32, 32, 3), classes=5)),
    ("se_resnet50", dict(input_shape=(32, 32, 3), classes=5)),
    ("mobilenet", dict(input_shape=(32, 32, 3), classes=5, alpha=0.25)),
    ("xception", dict(input_shape=(71, 71, 3), classes=5, middle_blocks=1)),
    ("densenet121", dict(input_shape=(32, 32, 3), classes=5, blocks=(2, 2, 2, 2), growth_rate=8)),
    ("googlenet", dict(input_shape=(64, 64, 3), classes=5)),
    ("convnext_tiny", dict(input_shape=(32, 32, 3), classes=5, depths=(1, 1, 1, 1), dims=(8, 16, 24, 32),
                           drop_path_rate=0.1)),
    ("alexnet", dict(input_shape=(67, 67, 3), classes=5)),
]


@pytest.mark.parametrize("name, kwargs", SMALL_VARIANTS, ids=[c[0] for c in SMALL_VARIANTS])
def test_small_variant_forward_shape_and_one_training_step(name, kwargs):
    model = models.get(name, **kwargs)
    classes = kwargs.get("classes", 10)
    shape = kwargs.get("input_shape", (32, 32, 3))
    rng = np.random.default_rng(0)
    x = rng.random((2, *shape), dtype=np.float32)
    labels = np.array([0, 1])
    logits = model.forward(x, training=True)
    assert logits.shape == (2, classes) and np.all(np.isfinite(logits))
    loss, dlogits = ops.softmax_cross_entropy(logits, labels)
    model.zero_grad()
    model.backward(dlogits)
    params = model.trainable_parameters()
    assert all(np.all(np.isfinite(p.grad)) for p in params)
    silent = [p.name for p in params if not np.any(p.grad)]
    assert not silent, f"parameters without gradient: {silent}"
    before = [p.value.copy() for p in params]
    for p in params:
        p.value -= 0.01 * p.grad
    assert any(not np.array_equal(b, p.value) for b, p in zip(before, params))


def test_lookup_by_name_and_unknown_name():
    assert "resnet50" in models.available() and "lenet5_modern" in models.available()
    with pytest.raises(ValueError, match="unknown model 'resnet51'.*resnet50"):
        models.get("resnet51")
    with pytest.raises(ValueError, match="depth must be one of"):
        models.resnet(depth=42)
    with pytest.raises(ValueError, match="6n\\+2"):
        models.resnet_cifar(depth=21)


def test_lenet5_modern_summary_matches_the_course():
    text = models.lenet5_modern().summary(print_fn=None)
    assert "61,706" in text
