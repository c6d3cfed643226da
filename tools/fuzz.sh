#!/usr/bin/env bash
# Runs the atheris harness for the op arguments (tests/fuzz/fuzz_ops.py) for SECONDS (default 600).
# Under ASan/UBSan when tools/asan.sh has built build-asan/, else against the in-place build.
#
#   tools/fuzz.sh [SECONDS]       # or: make fuzz FUZZ_SECONDS=600
#
# The corpus grows in fuzz-corpus/, findings (crash-*, timeout-*, oom-*) land in fuzz-artifacts/: turn each
# into a case of tests/robustness/cases.py before fixing it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_TO_RUN="${1:-600}"
mkdir -p "$ROOT/fuzz-corpus" "$ROOT/fuzz-artifacts"
export OPENBLAS_NUM_THREADS=1
if [[ -d "$ROOT/build-asan/lib/convkit" ]]; then
  export PYTHONPATH="$ROOT/build-asan/lib"
  # libstdc++ too: ASan intercepts __cxa_throw only if libstdc++ is loaded when it starts (CPython does not
# link it), else the first C++ exception aborts in the interceptor.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
  export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  echo "fuzzing the ASan/UBSan build in build-asan/"
else
  export PYTHONPATH="$ROOT"
  echo "fuzzing the in-place build (run tools/asan.sh first to fuzz under ASan)"
fi
cd "$ROOT/fuzz-artifacts"
exec python3 "$ROOT/tests/fuzz/fuzz_ops.py" -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=4096 \
  -artifact_prefix="$ROOT/fuzz-artifacts/" "$ROOT/fuzz-corpus"
