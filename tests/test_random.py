"""convkit.random: Philox4x32-10 known answers, the stream layout against an independent NumPy Philox, the
statistics of each distribution, reproducibility (seeds, states, thread counts), counters, argument checks."""
import math
import pickle
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from random_testing import (
    KNOWN_ANSWERS,
    bernoulli_reference,
    normal_reference,
    philox_reference,
    stream_words,
    uniform_reference,
    words_as_uint64,
)

import convkit
from convkit import _C
from convkit import random as ckr

DTYPES = [np.float32, np.float64]


def generator_at(seed, counter):
    g = ckr.Generator(seed)
    g.set_state({"algorithm": "philox4x32-10", "seed": seed, "counter": counter})
    return g


# ---- Philox4x32-10 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("counter,key,expected", KNOWN_ANSWERS)
def test_philox_matches_random123_known_answers(counter, key, expected):
    assert tuple(_C.philox4x32_10(list(counter), list(key))) == expected
    assert tuple(philox_reference(np.array([counter]), key)[0]) == expected  # the tests' own reference too


@given(counter=st.tuples(*[st.integers(0, 2**32 - 1)] * 4), key=st.tuples(*[st.integers(0, 2**32 - 1)] * 2))
def test_philox_matches_numpy_reference(counter, key):
    assert tuple(_C.philox4x32_10(list(counter), list(key))) == tuple(philox_reference(np.array([counter]), key)[0])


# ---- The stream layout: every value computed independently from the Philox words ------------------------------

seeds = st.one_of(st.integers(0, 3), st.integers(0, 2**64 - 1))
# Counters near 2**32 cross into the counter's high word within a call.
counters = st.one_of(st.integers(0, 10), st.integers(2**32 - 5, 2**32 + 5), st.integers(0, 2**64 - 2**20))


@given(seed=seeds, counter=counters, n=st.integers(0, 50), dtype=st.sampled_from(DTYPES))
def test_uniform_is_the_documented_function_of_the_stream(seed, counter, n, dtype):
    values = ckr.uniform(n, dtype, generator=generator_at(seed, counter))
    assert values.dtype == dtype and values.shape == (n,)
    np.testing.assert_array_equal(values, uniform_reference(seed, counter, n, dtype))


@given(seed=seeds, counter=counters, n=st.integers(0, 50), dtype=st.sampled_from(DTYPES))
def test_normal_is_box_muller_on_the_stream(seed, counter, n, dtype):
    values = ckr.normal(n, dtype, generator=generator_at(seed, counter))
    assert values.dtype == dtype
    # C++ and NumPy may differ in the last bit of log/cos/sin; float32 is rounded from float64.
    np.testing.assert_allclose(values, normal_reference(seed, counter, n, dtype),
                               rtol=1e-13 if dtype == np.float64 else 1e-7, atol=1e-13)


@given(seed=seeds, counter=counters, n=st.integers(0, 50), p=st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]))
def test_bernoulli_compares_words_with_p_times_2_to_the_32(seed, counter, n, p):
    values = ckr.bernoulli(n, p, generator=generator_at(seed, counter))
    assert values.dtype == np.bool_
    np.testing.assert_array_equal(values, bernoulli_reference(seed, counter, n, p))


@given(seed=seeds, counter=counters, n=st.integers(0, 40))
def test_permutation_sorts_64_bit_keys_from_the_stream(seed, counter, n):
    perm = ckr.permutation(n, generator=generator_at(seed, counter))
    keys = words_as_uint64(stream_words(seed, counter, 2 * n))
    assert perm.dtype == np.int64
    np.testing.assert_array_equal(perm, np.argsort(keys, kind="stable"))


@pytest.mark.parametrize("draw,words", [
    (lambda g, n: ckr.uniform(n, np.float32, generator=g), 1),
    (lambda g, n: ckr.uniform(n, np.float64, generator=g), 2),
    (lambda g, n: ckr.normal(n, np.float32, generator=g), 1),
    (lambda g, n: ckr.normal(n, np.float64, generator=g), 2),
    (lambda g, n: ckr.bernoulli(n, 0.5, generator=g), 1),
    (lambda g, n: ckr.permutation(n, generator=g), 2),
])
def test_each_call_advances_the_counter_by_the_blocks_it_used(draw, words):
    g = ckr.Generator(5)
    for n in (0, 1, 3, 4, 5, 17):
        before = g.counter
        draw(g, n)
        assert g.counter - before == math.ceil(n * words / 4)
    first, second = draw(g, 64), draw(g, 64)
    assert not np.array_equal(first, second)


def test_a_call_near_the_end_of_the_counter_raises_and_leaves_the_generator_usable():
    g = generator_at(1, 2**64 - 3)
    ckr.uniform(8, generator=g)
    assert g.counter == 2**64 - 1
    with pytest.raises(OverflowError, match="generator exhausted"):
        ckr.uniform(1, generator=g)
    assert ckr.uniform(0, generator=g).shape == (0,)
    assert g.counter == 2**64 - 1
    g.set_state(g.get_state())


# ---- Statistics ------------------------------------------------------------------------------------------------


def ks_distance(sample, cdf) -> float:
    """Kolmogorov-Smirnov distance between the sample's empirical distribution and cdf."""
    x = np.sort(sample)
    f = cdf(x)
    n = x.size
    return max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n))


def ks_threshold(n: int, p_value: float = 1e-6) -> float:
    """The KS distance a sample of n exceeds with probability about p_value (asymptotic formula)."""
    return math.sqrt(-math.log(p_value / 2) / (2 * n))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 1, 2**63 + 12345])
def test_uniform_statistics(dtype, seed):
    n = 400_000
    u = ckr.uniform(n, dtype, generator=ckr.Generator(seed)).astype(np.float64)
    assert u.min() >= 0.0 and u.max() < 1.0
    # Mean 1/2 and variance 1/12, each within 5 standard errors.
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 5 * math.sqrt(1 / 180 / n)  # var of (u - 1/2)^2 = 1/80 - 1/144 = 1/180
    assert ks_distance(u, lambda x: x) < ks_threshold(n)
    # Chi-square over 100 equal bins (99 degrees of freedom: exceeded with p ~ 1e-6 above ~ 170).
    counts = np.bincount((u * 100).astype(int), minlength=100)
    assert np.sum((counts - n / 100) ** 2 / (n / 100)) < 170
    # Neighbouring values are uncorrelated.
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 5 / math.sqrt(n)


def test_uniform_bounds():
    u = ckr.uniform((1000, 3), np.float64, low=-2.0, high=5.0, generator=ckr.Generator(3))
    assert u.shape == (1000, 3) and u.min() >= -2.0 and u.max() < 5.0 and u.min() < -1.9 and u.max() > 4.9


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 7])
def test_normal_statistics(dtype, seed):
    n = 400_000
    z = ckr.normal(n, dtype, generator=ckr.Generator(seed)).astype(np.float64)
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    normal_cdf = np.vectorize(lambda t: 0.5 * (1 + math.erf(t / math.sqrt(2))))
    assert ks_distance(z, normal_cdf) < ks_threshold(n)
    # Tails: P(|z| > 3) = 0.0026998, within 5 binomial standard deviations.
    p3 = 0.0026998
    assert abs(np.mean(np.abs(z) > 3) - p3) < 5 * math.sqrt(p3 * (1 - p3) / n)
    # The two values of a Box-Muller pair are uncorrelated, and so are neighbouring pairs.
    assert abs(np.corrcoef(z[0::2], z[1::2])[0, 1]) < 5 / math.sqrt(n / 2)
    assert abs(np.corrcoef(z[1:-1:2], z[2::2])[0, 1]) < 5 / math.sqrt(n / 2)


def test_normal_mean_and_std():
    z = ckr.normal(200_000, np.float64, mean=3.0, std=0.5, generator=ckr.Generator(4))
    assert abs(z.mean() - 3.0) < 5 * 0.5 / math.sqrt(z.size)
    assert abs(z.std() - 0.5) < 5 * 0.5 / math.sqrt(2 * z.size)
    np.testing.assert_array_equal(ckr.normal(5, std=0.0, mean=2.0), np.full(5, 2.0, np.float32))


@pytest.mark.parametrize("p", [0.0, 0.01, 0.3, 0.5, 0.999, 1.0])
def test_bernoulli_frequency(p):
    n = 200_000
    b = ckr.bernoulli(n, p, generator=ckr.Generator(11))
    assert abs(b.mean() - p) <= 5 * math.sqrt(p * (1 - p) / n)


def test_permutation_is_uniform():
    # All 24 orders of 4 items, 24000 draws: chi-square with 23 degrees of freedom (p ~ 1e-6 above ~ 70).
    g = ckr.Generator(21)
    draws = np.array([ckr.permutation(4, generator=g) for _ in range(24_000)])
    assert all(sorted(d) == [0, 1, 2, 3] for d in draws[:100])
    codes = draws @ np.array([64, 16, 4, 1])
    counts = np.unique(codes, return_counts=True)[1]
    assert counts.size == 24
    assert np.sum((counts - 1000) ** 2 / 1000) < 70


def test_shuffle_permutes_the_first_axis_in_place():
    x = np.arange(30.0).reshape(10, 3)
    original = x.copy()
    state = ckr.Generator(8).get_state()
    g = ckr.Generator(8)
    ckr.shuffle(x, generator=g)
    g.set_state(state)
    np.testing.assert_array_equal(x, original[ckr.permutation(10, generator=g)])
    assert not np.array_equal(x, original)
    np.testing.assert_array_equal(np.sort(x, axis=0), original)


# ---- Reproducibility ------------------------------------------------------------------------------------------


def test_same_seed_same_values_different_seed_different_values():
    a = ckr.uniform(1000, generator=ckr.Generator(42))
    np.testing.assert_array_equal(a, ckr.uniform(1000, generator=ckr.Generator(42)))
    b = ckr.uniform(1000, generator=ckr.Generator(43))
    assert np.mean(a == b) < 0.01
    assert abs(np.corrcoef(a, b)[0, 1]) < 5 / math.sqrt(1000)


def test_global_generator_seed_get_state_set_state():
    ckr.seed(123)
    assert ckr.get_state() == {"algorithm": "philox4x32-10", "seed": 123, "counter": 0}
    first = ckr.normal((3, 4))
    state = ckr.get_state()
    second = ckr.normal((3, 4))
    assert not np.array_equal(first, second)
    ckr.set_state(state)
    np.testing.assert_array_equal(ckr.normal((3, 4)), second)
    ckr.seed(123)
    np.testing.assert_array_equal(ckr.normal((3, 4)), first)
    assert ckr.global_generator().seed == 123


def test_generator_state_survives_pickle_and_resumes_bit_identically():
    g = ckr.Generator(99)
    ckr.uniform(10, generator=g)
    clone = pickle.loads(pickle.dumps(g))
    assert clone.get_state() == g.get_state() and clone is not g
    np.testing.assert_array_equal(ckr.permutation(50, generator=clone), ckr.permutation(50, generator=g))
    assert repr(g) == f"Generator(seed=99, counter={g.counter})"


def test_unseeded_generators_differ_and_report_their_seed():
    a, b = ckr.Generator(), ckr.Generator()
    assert a.seed != b.seed
    np.testing.assert_array_equal(ckr.uniform(5, generator=a), ckr.uniform(5, generator=ckr.Generator(a.seed)))


@pytest.mark.parametrize("draw", [
    lambda g: ckr.uniform(300_001, np.float32, generator=g),
    lambda g: ckr.uniform(300_001, np.float64, low=-1.0, high=2.0, generator=g),
    lambda g: ckr.normal(300_001, np.float32, generator=g),
    lambda g: ckr.normal(300_001, np.float64, generator=g),
    lambda g: ckr.bernoulli(300_001, 0.3, generator=g),
    lambda g: ckr.permutation(300_001, generator=g),
])
def test_values_are_identical_for_any_thread_count(draw):
    results = []
    for threads in (1, 2, 3):
        convkit.set_num_threads(threads)
        results.append(draw(generator_at(17, 2**32 - 3)))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_python_threads_sharing_a_generator_draw_disjoint_blocks():
    g = ckr.Generator(31)
    out = [None] * 8

    def work(i):
        out[i] = ckr.uniform(4000, generator=g)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert g.counter == 8 * 1000
    everything = np.concatenate(out)
    expected = uniform_reference(31, 0, 32_000, np.float32)
    np.testing.assert_array_equal(np.sort(everything), np.sort(expected))


# ---- Arguments ------------------------------------------------------------------------------------------------


def test_rejects_bad_arguments():
    g = ckr.Generator(0)
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*64\), got -1"):
        ckr.Generator(-1)
    with pytest.raises(ValueError, match=r"n must be in \[0, 2\*\*64\), got 18446744073709551616"):
        ckr.seed(2**64)
    with pytest.raises(TypeError, match="seed must be an int, got 1.5"):
        ckr.Generator(1.5)
    with pytest.raises(TypeError, match="shape must be an int or a tuple of ints, got 'a'"):
        ckr.uniform("a")
    with pytest.raises(ValueError, match=r"shape must not have negative sizes, got \(2, -1\)"):
        ckr.normal((2, -1))
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got dtype\\('int32'\\)"):
        ckr.uniform(3, np.int32)
    with pytest.raises(ValueError, match="low must be less than high, got low=1.0, high=1.0"):
        ckr.uniform(3, low=1.0, high=1.0)
    with pytest.raises(ValueError, match="std must be >= 0, got -1.0"):
        ckr.normal(3, std=-1.0)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        ckr.bernoulli(3, 1.5)
    with pytest.raises(ValueError, match="n must be >= 0, got -2"):
        ckr.permutation(-2)
    with pytest.raises(TypeError, match="generator must be a convkit.random.Generator or None, got 7"):
        ckr.uniform(3, generator=7)
    with pytest.raises(TypeError, match="x must be a numpy array"):
        ckr.shuffle([1, 2, 3])
    with pytest.raises(ValueError, match="x must be writeable"):
        x = np.arange(3)
        x.flags.writeable = False
        ckr.shuffle(x)
    with pytest.raises(ValueError, match="state must be a dict with keys"):
        g.set_state({"seed": 1})
    with pytest.raises(ValueError, match="state\\['algorithm'\\] must be 'philox4x32-10', got 'mt19937'"):
        g.set_state({"algorithm": "mt19937", "seed": 1, "counter": 0})
    with pytest.raises(ValueError, match=r"state\['counter'\] must be in \[0, 2\*\*64\), got -5"):
        g.set_state({"algorithm": "philox4x32-10", "seed": 1, "counter": -5})
    assert g.get_state() == {"algorithm": "philox4x32-10", "seed": 0, "counter": 0}  # left unchanged
