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

// The A operand as the CPU driver consumes it: an m x k matrix that packs itself, block by block, into
// the microkernel's MR-row micro-panels. A strided matrix is one (StridedA); convolution's im2col is
// another, which gathers input pixels straight into the panels (ops/im2col.h).
template <class T>
class PackSourceA {
 public:
  PackSourceA(std::int64_t rows, std::int64_t cols) : rows_(rows), cols_(cols) {}
  virtual ~PackSourceA() = default;
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  // Rows [i0, i0 + mc) x cols [p0, p0 + kc), times alpha, as ceil(mc / MR) panels of kc * MR values
  // (rows past mc are zeros). Called concurrently from several threads: must not modify the source.
  virtual void pack(std::int64_t i0, std::int64_t p0, std::int64_t mc, std::int64_t kc, const GemmUkernel<T>& uk,
                    T alpha, T* dst) const noexcept = 0;

 private:
  std::int64_t rows_, cols_;
};

template <class T>
class StridedA final : public PackSourceA<T> {
 public:
  explicit StridedA(MatrixRef<const T> a) : PackSourceA<T>(a.rows, a.cols), a_(a) {}
  void pack(std::int64_t i0, std::int64_t p0, std::int64_t mc, std::int64_t kc, const GemmUkernel<T>& uk, T alpha,
            T* dst) const noexcept override;

 private:
  MatrixRef<const T> a_;
};

// The B operand likewise: a k x n matrix that packs itself into NR-column micro-panels. Convolution's
// backward weights gathers its column matrix into them straight from the input (ops/im2col.h).
template <class T>
class PackSourceB {
 public:
  PackSourceB(std::int64_t rows, std::int64_t cols) : rows_(rows), cols_(cols) {}
  virtual ~PackSourceB() = default;
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  // Rows [p0, p0 + kc) x cols [j0, j0 + nc) as ceil(nc / NR) panels of kc * NR values, row p of panel q
  // at dst[q * kc * NR + p * NR] (columns past nc are zeros). Called concurrently: must not modify the source.
  virtual void pack(std::int64_t p0, std::int64_t j0, std::int64_t kc, std::int64_t nc, int nr,
                    T* dst) const noexcept = 0;

 private:
  std::int64_t rows_, cols_;
};

template <class T>
class StridedB final : public PackSourceB<T> {
 public:
  explicit StridedB(MatrixRef<const T> b) : PackSourceB<T>(b.rows, b.cols), b_(b) {}
  void pack(std::int64_t p0, std::int64_t j0, std::int64_t kc, std::int64_t nc, int nr, T* dst) const noexcept override;

 private:
  MatrixRef<const T> b_;
};

// The CPU implementation with an explicit microkernel and thread count (tests, benchmarks, other ops).
template <class T>
void gemm_cpu(MatrixRef<const T> a, MatrixRef<const T> b, MatrixRef<T> c, T alpha, T beta,
              const GemmEpilogue<T>& epilogue, const GemmUkernel<T>& kernel, int threads);
template <class T>
void gemm_cpu(const PackSourceA<T>& a, MatrixRef<const T> b, MatrixRef<T> c, T alpha, T beta,
              const GemmEpilogue<T>& epilogue, const GemmUkernel<T>& kernel, int threads);
template <class T>
void gemm_cpu(const PackSourceA<T>& a, const PackSourceB<T>& b, MatrixRef<T> c, T alpha, T beta,
              const GemmEpilogue<T>& epilogue, const GemmUkernel<T>& kernel, int threads);

// The most bytes of packing panels gemm_cpu charges to the workspace (core/workspace.h) for an (m, k) @ (k, n)
// product, or any smaller one, on `threads` threads: what a caller checks against the workspace before
// choosing how to split its work (conv backward weights splits k). A few MB, as the panels are cache blocks,
// unless a narrow B is packed whole (only where that fits the workspace available at the call).
template <class T>
std::int64_t gemm_workspace_bound(std::int64_t m, std::int64_t n, std::int64_t k, const GemmUkernel<T>& kernel,
                                  int threads);

// The most rows a microkernel tile may have (the size of a packer's row-pointer array).
constexpr int kMaxKernelRows = 16;

template <class T>
using GemmFn = void (*)(MatrixRef<const T>, MatrixRef<const T>, MatrixRef<T>, T, T, const GemmEpilogue<T>&);

// Per-device implementations; a GPU backend registers its own entry here.
template <class T>
DeviceTable<GemmFn<T>>& gemm_table();

}  // namespace convkit
