#!/usr/bin/env bash
# Runs an atheris harness, by default the one for the op arguments (tests/fuzz/fuzz_ops.py), for SECONDS
# (default 600).
#
#   tools/fuzz.sh [SECONDS]          # coverage-guided, against the in-place build      (make fuzz)
#   tools/fuzz.sh [SECONDS] asan     # against the ASan/UBSan build of tools/asan.sh    (make fuzz-asan)
#   FUZZ_HARNESS=checkpoint tools/fuzz.sh [SECONDS] [asan]  # the checkpoint loader, tests/fuzz/fuzz_checkpoint.py
#       (corpus fuzz-corpus-checkpoint/; make fuzz-checkpoint, make fuzz-checkpoint-asan)
#
# Under ASan the coverage feedback is lost: the preloaded gcc libasan shadows the coverage hooks of
# atheris's libFuzzer (atheris's own asan_with_fuzzer.so is clang's runtime, incompatible with a gcc build).
# So grow the corpus without ASan first; the ASan run replays it, then mutates its inputs blindly
# (-keep_seed=1: without coverage no input looks useful, and the corpus would collapse to one empty input).
# The corpus is fuzz-corpus/; findings (crash-*, timeout-*, oom-*) land in fuzz-artifacts/: turn each into
# a case of tests/robustness/cases.py, then fix it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_TO_RUN="${1:-600}"
HARNESS="${FUZZ_HARNESS:-ops}"
MODE_FLAGS=()
CORPUS="$ROOT/fuzz-corpus$([[ "$HARNESS" == ops ]] || echo "-$HARNESS")"
mkdir -p "$CORPUS" "$ROOT/fuzz-artifacts"
export OPENBLAS_NUM_THREADS=1
if [[ "${2:-}" == "asan" ]]; then
  "$ROOT/tools/asan.sh" --build  # bring the instrumented build and its Python copy up to date
  export PYTHONPATH="$ROOT/build-asan/lib"
  # libstdc++ too: see tools/asan.sh
  export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
  export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  MODE_FLAGS=(-keep_seed=1)
else
  export PYTHONPATH="$ROOT"
fi
cd "$ROOT/fuzz-artifacts"
exec python3 "$ROOT/tests/fuzz/fuzz_$HARNESS.py" -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=4096 \
  "${MODE_FLAGS[@]}" -artifact_prefix="$ROOT/fuzz-artifacts/" "$CORPUS"
