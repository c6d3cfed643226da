// CONVKIT_HOST_DEVICE marks a small pure function that the CUDA backend's kernels share with the CPU code
// (the Philox generator, the fused activations), so that both devices compute the same values from one
// definition. Outside nvcc it expands to nothing.
#pragma once

#if defined(__CUDACC__)
#define CONVKIT_HOST_DEVICE __host__ __device__
#else
#define CONVKIT_HOST_DEVICE
#endif
