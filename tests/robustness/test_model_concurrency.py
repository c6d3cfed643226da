"""One model shared by threads: 8 threads x 200 predict calls give results bit-identical to a serial run (a
graph with BatchNorm, Dropout and a residual Add; and an unbuilt Sequential that the threads build on
first use); 1,000 predict calls do not grow the resident set."""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import convkit
from convkit import Input, Model, initializers
from convkit.layers import (Add, BatchNormalization, Conv2D, Dense, Dropout, Flatten, GlobalAveragePooling,
                            MaxPooling2D)

from .test_memory import resident_bytes, rss_measurable

THREADS, CALLS = 8, 200


@pytest.fixture(autouse=True)
def seeded():
    initializers.set_seed(0)


def residual_graph() -> Model:
    x = Input((8, 8, 3))
    y = BatchNormalization()(Conv2D(6, 3, padding="same", activation="relu")(x))
    y = Add()([y, Conv2D(6, 1)(x)])
    y = Dropout(0.5)(MaxPooling2D(2)(y))
    model = Model(x, Dense(4)(GlobalAveragePooling()(y)))
    warm = np.random.default_rng(1).standard_normal((4, 8, 8, 3)).astype(np.float32)
    model.forward(warm, training=True)  # moving statistics away from their initial values
    return model


def inputs(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(2)
    return [rng.standard_normal((1 + i % 3, 8, 8, 3)).astype(np.float32) for i in range(count)]


def predict_from_threads(model, xs: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Thread t calls model.predict(xs[t]) CALLS times, all threads started together; every result, per thread."""
    results: list[list[np.ndarray]] = [[] for _ in xs]
    start = threading.Barrier(len(xs))
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            start.wait()
            for _ in range(CALLS):
                results[t].append(model.predict(xs[t], batch_size=2))
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(len(xs))]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors
    return results


@pytest.mark.parametrize("openmp_threads", [1, 2])
def test_eight_threads_predicting_on_one_model_match_serial_bit_for_bit(openmp_threads):
    model = residual_graph()
    xs = inputs(THREADS)
    serial = [model.predict(x, batch_size=2) for x in xs]
    previous = convkit.get_num_threads()
    convkit.set_num_threads(openmp_threads)
    try:
        results = predict_from_threads(model, xs)
    finally:
        convkit.set_num_threads(previous)
    for t, outputs in enumerate(results):
        assert len(outputs) == CALLS
        for output in outputs:
            np.testing.assert_array_equal(output, serial[t])


def test_threads_sharing_an_unbuilt_sequential_build_it_once_and_agree():
    def make():
        initializers.set_seed(3)
        return convkit.Sequential([Conv2D(4, 3, activation="relu"), MaxPooling2D(2), Flatten(), Dense(3)])

    xs = inputs(THREADS)
    reference = make()
    serial = [reference.predict(x) for x in xs]
    shared = make()
    results = predict_from_threads(shared, xs)
    assert [p.name.split("/")[1] for p in shared.parameters()] == ["kernel", "bias", "kernel", "bias"]
    for t, outputs in enumerate(results):
        for output in outputs:
            np.testing.assert_array_equal(output, serial[t])


@rss_measurable
def test_thousand_predict_calls_do_not_grow_rss():
    model = residual_graph()
    x = inputs(1)[0]
    for _ in range(50):  # warm up: allocator pools, kernel scratch
        model.predict(x)
    before = resident_bytes()
    for _ in range(1000):
        model.predict(x)
    grown = resident_bytes() - before
    assert grown < 5 * 2**20, f"RSS grew by {grown / 2**20:.1f} MB over 1,000 predict calls"
