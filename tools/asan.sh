#!/usr/bin/env bash
# Builds convkit._C with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ (the in-place build
# is left alone) and runs the kernel tests and the bad-input battery against it.
#
#   tools/asan.sh                 # or: make asan
#   tools/asan.sh --build         # only build and stage build-asan/lib (tools/fuzz.sh uses it)
#   tools/asan.sh -x tests/robustness   # arguments go to pytest; a path under tests/ replaces the
#                                       # default list of test files
#
# Python itself is not instrumented, so libasan is preloaded; leak detection is off (CPython's own
# allocations would drown the report). Any UB report aborts the process: a test then fails or crashes.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/build-asan"
SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

cd "$ROOT"
CFLAGS="$SANITIZE -g" LDFLAGS="$SANITIZE" CONVKIT_BUILD_JOBS="${CONVKIT_BUILD_JOBS:-1}" \
  python3 setup.py build_ext --build-temp "$OUT/temp" --build-lib "$OUT/lib" | tail -1
# The Python package next to the instrumented extension: tests run from there, so `import convkit` (and
# every subprocess the tests start) finds this copy before the source tree's.
(cd "$ROOT" && find convkit -name '*.py' -exec install -D -m 644 {} "$OUT/lib/{}" \;)
[[ "${1:-}" == "--build" ]] && exit 0

TESTS=(tests/test_gemm.py tests/test_conv.py tests/test_conv_backward.py tests/test_depthwise.py
       tests/test_composite_conv.py tests/test_pool.py tests/test_norm.py tests/test_loss.py tests/robustness)
for a in "$@"; do [[ "$a" == tests/* ]] && TESTS=() && break; done
ARGS=()
for a in "${TESTS[@]}" "$@"; do [[ "$a" == tests/* ]] && ARGS+=("$ROOT/$a") || ARGS+=("$a"); done

cd "$OUT/lib"
# libstdc++ too: ASan intercepts __cxa_throw only if libstdc++ is loaded when it starts (CPython does not
# link it), else the first C++ exception aborts in the interceptor.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export OPENBLAS_NUM_THREADS=1
exec python3 -m pytest -q -p no:warnings -p no:cacheprovider "${ARGS[@]}"
