# Developer checks beyond the test suite (see README, "Reliability").
.PHONY: asan fuzz fuzz-asan fuzz-checkpoint fuzz-checkpoint-asan

# Kernel tests + the bad-input battery against an AddressSanitizer/UBSan build in build-asan/.
asan:
	tools/asan.sh

# The atheris harness for the op arguments, FUZZ_SECONDS long: coverage-guided on the in-place build, or
# replaying and mutating its corpus under ASan/UBSan.
FUZZ_SECONDS ?= 600
fuzz:
	tools/fuzz.sh $(FUZZ_SECONDS)

fuzz-asan:
	tools/fuzz.sh $(FUZZ_SECONDS) asan

# The atheris harness for the checkpoint loader: coverage-guided, or under ASan/UBSan (a loaded model is
# built and run by the compiled core).
fuzz-checkpoint:
	FUZZ_HARNESS=checkpoint tools/fuzz.sh $(FUZZ_SECONDS)

fuzz-checkpoint-asan:
	FUZZ_HARNESS=checkpoint tools/fuzz.sh $(FUZZ_SECONDS) asan
