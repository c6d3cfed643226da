"""Preprocessing helpers: fitted statistics, application to other data, dtypes, errors."""
import numpy as np
import pytest

from convkit.preprocessing import ChannelMeanSubtraction, ChannelStandardization, MeanImageSubtraction

PREPROCESSORS = [MeanImageSubtraction, ChannelMeanSubtraction, ChannelStandardization]


@pytest.fixture
def train():
    return np.random.default_rng(0).normal(5.0, 3.0, size=(20, 4, 5, 3))


def test_mean_image_subtraction_uses_the_training_mean_image(train):
    test = np.random.default_rng(1).normal(size=(2, 4, 5, 3))
    prep = MeanImageSubtraction().fit(train)
    np.testing.assert_allclose(prep.mean_, train.mean(axis=0))
    np.testing.assert_allclose(prep.transform(test), test - train.mean(axis=0))
    np.testing.assert_allclose(prep.transform(train).mean(axis=0), 0, atol=1e-12)


def test_channel_mean_subtraction_uses_one_mean_per_channel(train):
    prep = ChannelMeanSubtraction().fit(train)
    np.testing.assert_allclose(prep.mean_, train.mean(axis=(0, 1, 2)))
    other = np.ones((3, 7, 3))  # other spatial sizes are fine: only the channels must match
    np.testing.assert_allclose(prep.transform(other), other - train.mean(axis=(0, 1, 2)))


def test_channel_standardization_gives_zero_mean_unit_std_on_training_data(train):
    out = ChannelStandardization().fit_transform(train)
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1, rtol=1e-12)


def test_channel_standardization_centres_a_constant_channel():
    x = np.zeros((4, 2, 2))
    x[..., 0] = 7.0
    x[..., 1] = np.arange(8.0).reshape(4, 2)
    prep = ChannelStandardization().fit(x)
    assert prep.std_[0] == 1.0
    np.testing.assert_array_equal(prep.transform(x)[..., 0], 0.0)


@pytest.mark.parametrize("cls", PREPROCESSORS)
def test_dtypes(cls):
    images = np.random.default_rng(2).integers(0, 256, size=(6, 3, 3, 3), dtype=np.uint8)
    assert cls().fit_transform(images).dtype == np.float64
    assert cls().fit_transform(images.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("cls", PREPROCESSORS)
def test_transform_before_fit_raises(cls):
    with pytest.raises(RuntimeError, match=f"{cls.__name__} is not fitted: call fit"):
        cls().transform(np.ones((2, 3)))


@pytest.mark.parametrize("cls,bad_shape,match", [
    (MeanImageSubtraction, (2, 4, 6, 3), r"per-sample shape \(4, 5, 3\).*\(2, 4, 6, 3\)"),
    (ChannelMeanSubtraction, (2, 4, 5, 2), r"channel count \(3,\).*\(2, 4, 5, 2\)"),
    (ChannelStandardization, (2, 1), r"channel count \(3,\).*\(2, 1\)"),
])
def test_transform_rejects_other_shapes(train, cls, bad_shape, match):
    with pytest.raises(ValueError, match=match):
        cls().fit(train).transform(np.ones(bad_shape))


@pytest.mark.parametrize("cls", PREPROCESSORS)
def test_fit_rejects_bad_input(cls):
    with pytest.raises(ValueError, match=r"at least 2 axes, got shape \(3,\)"):
        cls().fit(np.ones(3))
    with pytest.raises(ValueError, match=r"at least one sample.*\(0, 3\)"):
        cls().fit(np.ones((0, 3)))
    with pytest.raises(TypeError, match="real numeric array, got dtype <U1"):
        cls().fit(np.array([["a"]]))
