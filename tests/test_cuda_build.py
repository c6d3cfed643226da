"""The CUDA extension is built and links wherever the toolchain is (nvcc + cuBLAS): CI compiles it on a
machine without a GPU, so its import and device query must work there."""
import pytest

import convkit
from convkit._cuda_toolchain import find_cuda_toolchain

toolchain, why_not = find_cuda_toolchain()


@pytest.mark.skipif(toolchain is None, reason=f"no CUDA toolchain: {why_not}")
def test_cuda_extension_is_built_and_loads_where_the_toolchain_is():
    assert convkit.cuda.is_built(), convkit.runtime.config()["cuda"]["error"]
    from convkit import _cuda

    count = _cuda.device_count()  # 0 without a GPU or driver, and no exception
    assert isinstance(count, int) and count >= 0
    assert convkit.cuda.device_count() == count
    assert _cuda.runtime_version().split(".")[0].isdigit()


def test_runtime_config_reports_cuda():
    cuda = convkit.runtime.config()["cuda"]
    assert cuda["built"] == convkit.cuda.is_built()
    assert cuda["devices"] == convkit.cuda.device_count()
    assert (cuda["error"] is None) == cuda["built"]
    assert (cuda["runtime"] is None) != cuda["built"]
