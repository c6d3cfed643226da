// GEMM, the engine under every convolution: C = act(alpha · A · B + beta · C + bias).
#pragma once
#include <cstdint>

#include "core/activation.h"
#include "core/device.h"
#include "kernels/gemm_ukernel.h"

namespace convkit {

// A strided matrix: element (i, j) lives at data[i * row_stride + j * col_stride] (strides in elements;
// any sign). A transpose is a view, not a copy.
template <class T>
struct MatrixRef {
  T* data;
  std::int64_t rows, cols, row_stride, col_stride;
  Device device = Device::cpu;

  MatrixRef transposed() const { return {data, cols, rows, col_stride, row_stride, device}; }
};

// What is applied to each C element once its sum is complete, while the tile is still in L1.
template <class T>
struct GemmEpilogue {
  const T* bias = nullptr;  // one value per column of C (per output channel), or null
  Activation activation = Activation::none;
  T negative_slope = T(0.01);  // leaky_relu's slope for negative values
};

// A: m x k, B: k x n, C: m x n with unit column stride, not overlapping A or B. beta == 0 never reads C.
// Throws std::invalid_argument on mismatched shapes or devices. Dispatches on the operands' device.
template <class T>
void gemm(MatrixRef<const T> a, MatrixRef<const T> b, MatrixRef<T> c, T alpha, T beta,
          const GemmEpilogue<T>& epilogue = {});

// The CPU implementation with an explicit microkernel and thread count (tests, benchmarks, other ops).
template <class T>
void gemm_cpu(MatrixRef<const T> a, MatrixRef<const T> b, MatrixRef<T> c, T alpha, T beta,
              const GemmEpilogue<T>& epilogue, const GemmUkernel<T>& kernel, int threads);

template <class T>
using GemmFn = void (*)(MatrixRef<const T>, MatrixRef<const T>, MatrixRef<T>, T, T, const GemmEpilogue<T>&);

// Per-device implementations; a GPU backend registers its own entry here.
template <class T>
DeviceTable<GemmFn<T>>& gemm_table();

}  // namespace convkit
