"""convkit.set_workspace_limit: validation, tiling under a low limit (same bits), MemoryError over it, and the
C++ check behind the Python one. The limit applies to the total scratch one op call holds at once (column
tiles, GEMM packing panels, the transposed copy of w), over all its threads."""
from __future__ import annotations

import re

import numpy as np
import pytest

import convkit
from convkit import _C, ops
from convkit.workspace import DEFAULT_WORKSPACE_LIMIT


@pytest.fixture(autouse=True)
def restore_limit():
    yield
    convkit.set_workspace_limit(DEFAULT_WORKSPACE_LIMIT)


def test_default_is_one_gib_and_round_trips():
    assert convkit.get_workspace_limit() == DEFAULT_WORKSPACE_LIMIT == 2**30
    convkit.set_workspace_limit(12345)
    assert convkit.get_workspace_limit() == 12345


@pytest.mark.parametrize("bad,error", [(-1, ValueError), (2**63, ValueError), (1.0, TypeError), (True, TypeError),
                                       ("1GB", TypeError)])
def test_set_workspace_limit_validates(bad, error):
    with pytest.raises(error, match=re.escape(repr(bad))):
        convkit.set_workspace_limit(bad)


@pytest.mark.parametrize("padding_mode,stride", [("zeros", 2), ("reflect", 1), ("circular", (1, 2))])
@pytest.mark.parametrize("threads", [1, 2])
def test_low_limit_tiles_finer_with_the_same_results(padding_mode, stride, threads):
    convkit.set_num_threads(threads)
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((8, 16, 16, 6)), rng.standard_normal((3, 3, 6, 5))
    options = dict(padding=1, padding_mode=padding_mode, stride=stride)
    dy = rng.standard_normal(ops.conv(x, w, **options).shape)
    expected = ops.conv(x, w, **options), *ops.conv_backward(dy, x, w, **options)
    # A column row is 3 * 3 * 6 doubles: 160 KiB, shared by the column tiles, the GEMM's packing panels and
    # dw's copy of w, leaves tiles of far fewer rows than the usual 2427, so backward data and weights walk
    # the 512 to 2048 output pixels in several tiles.
    convkit.set_workspace_limit(160 * 1024)
    got = ops.conv(x, w, **options), *ops.conv_backward(dy, x, w, **options)
    # y, dx and db do not depend on the tiling; dw sums the tiles in order, so only its rounding may.
    for name, a, b in zip(("y", "dx", "dw", "db"), expected, got):
        if name == "dw":
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
        else:
            np.testing.assert_array_equal(b, a, err_msg=name)


def test_over_the_limit_raises_memory_error_with_the_bytes():
    x, w = np.ones((1, 6, 6, 64)), np.ones((5, 5, 64, 4))
    convkit.set_workspace_limit(1000)
    with pytest.raises(MemoryError, match=r"needs \d+ bytes of workspace, over the limit of 1000 bytes"):
        ops.conv_backward(np.ones((1, 2, 2, 4)), x, w)
    with pytest.raises(MemoryError, match="limit of 1000 bytes"):
        ops.matmul(np.ones((64, 64)), np.ones((64, 64)))
    convkit.set_workspace_limit(DEFAULT_WORKSPACE_LIMIT)
    assert ops.conv_backward(np.ones((1, 2, 2, 4)), x, w)[1].shape == w.shape  # nothing left half-done


def test_the_core_enforces_the_limit_without_the_python_layer():
    dx, w, dy = np.empty((1, 1, 7, 7, 64)), np.ones((1, 5, 5, 64, 4)), np.ones((1, 1, 2, 2, 4))
    convkit.set_workspace_limit(5 * 5 * 64 * 8 - 1)  # one column row is 12800 bytes
    with pytest.raises(MemoryError, match=r"conv backward data \(column tiles and GEMM panels\) needs (\d+) bytes") as info:
        _C.conv_backward_data(dy, w, dx, (1, 2, 2), (1, 1, 1), (0, 0, 0), 1, "zeros")
    assert int(re.search(r"needs (\d+) bytes", str(info.value)).group(1)) > 12800  # the row and the GEMM's panels


def test_the_limit_counts_every_buffer_a_call_holds_at_once():
    """dw's transposed copy and a one-row column tile each fit the limit, and fit it together (so the Python
    pre-check passes), but not together with the GEMM's packing panels: the core raises, naming the bytes
    the call already holds."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 8, 8, 32)), rng.standard_normal((3, 3, 32, 64))
    dy = rng.standard_normal((2, 6, 6, 64))
    w_bytes, row_bytes = w.nbytes, 3 * 3 * 32 * 8
    convkit.set_workspace_limit(w_bytes + row_bytes)
    with pytest.raises(MemoryError, match=rf"on top of the {w_bytes} bytes this call already holds \((\d+) in all\), "
                                          rf"over the limit of {w_bytes + row_bytes} bytes"):
        ops.conv_backward(dy, x, w, need="w")


def smallest_working_limit(call, low: int, high: int) -> int:
    """The least workspace limit in (low, high] under which call() does not raise MemoryError (bisection;
    call() must fail at low and work at high)."""
    while high - low > 1:
        middle = (low + high) // 2
        convkit.set_workspace_limit(middle)
        try:
            call()
            high = middle
        except MemoryError:
            low = middle
    return high


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("need", ["x", "w"])
def test_at_the_smallest_working_limit_the_call_tiles_down_with_the_same_results(threads, need):
    """Bisect the least limit conv_backward works under: over the bytes of its largest buffer alone (the
    limit counts the sum), yet still under what the usual tiles need (the tiles shrank to fit), with
    results equal to the untiled ones (dx bit for bit; dw summed in more tiles)."""
    convkit.set_num_threads(threads)
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((4, 12, 12, 8)), rng.standard_normal((3, 3, 8, 24))
    dy = rng.standard_normal((4, 10, 10, 24))
    index = {"x": 0, "w": 1}[need]
    expected = ops.conv_backward(dy, x, w, need=need)[index]
    usual_tile_bytes = 2**20  # the column tile size of conv.cc when the limit allows it

    def run():
        return ops.conv_backward(dy, x, w, need=need)[index]

    least = smallest_working_limit(run, 0, 8 * 2**20)
    largest_single_buffer = w.nbytes if need == "w" else 3 * 3 * 8 * 8  # dw's copy, or a one-row tile
    assert largest_single_buffer < least < usual_tile_bytes
    convkit.set_workspace_limit(least)
    got = run()
    if need == "x":
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    convkit.set_workspace_limit(least - 1)
    with pytest.raises(MemoryError, match=rf"over the limit of {least - 1} bytes"):
        run()


def test_depthwise_weight_gradient_counts_its_totals_and_partials_together():
    """Depthwise dw keeps per-row-block totals and per-thread partial sums at once: just under the least
    limit that works, the second buffer is refused on top of the first."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 32, 32, 8)), rng.standard_normal((3, 3, 1, 8))
    dy = rng.standard_normal((2, 30, 30, 8))
    expected = ops.conv_backward(dy, x, w, groups=8, need="w")[1]

    def run():
        return ops.conv_backward(dy, x, w, groups=8, need="w")[1]

    least = smallest_working_limit(run, 0, 8 * 2**20)
    convkit.set_workspace_limit(least)
    np.testing.assert_array_equal(run(), expected)  # its sums do not depend on the limit
    convkit.set_workspace_limit(least - 1)
    with pytest.raises(MemoryError, match=r"depthwise weight-gradient partials needs \d+ bytes of workspace on top "
                                          r"of the \d+ bytes this call already holds"):
        run()
