# Developer checks beyond the test suite (see README, "Reliability").
.PHONY: asan fuzz

# Kernel tests + the bad-input battery against an AddressSanitizer/UBSan build in build-asan/.
asan:
	tools/asan.sh

# The atheris harness for the op arguments, for FUZZ_SECONDS (default 600), under ASan when built.
FUZZ_SECONDS ?= 600
fuzz:
	tools/fuzz.sh $(FUZZ_SECONDS)
