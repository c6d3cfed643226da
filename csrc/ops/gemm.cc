// GEMM driver: BLIS-style five loops around a register-tiled microkernel.
//
//   jc: columns of C in NC-wide panels        (B panel kc x nc packed, lives in L3)
//    pc: the k dimension in KC-deep slices
//     ic: rows of C in MC-tall blocks          (A block mc x kc packed, lives in L2)
//      jr, ir: MR x NR tiles -> microkernel     (B micro-panel kc x NR lives in L1)
//
// Threads: C is cut into a grid of thread blocks along tile boundaries and every thread runs the loops
// above on its own block with its own packing buffers. No barriers; the values computed for a C element
// do not depend on the grid, so results are identical for any thread count.
#include "ops/gemm.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "core/aligned_buffer.h"
#include "core/checked_math.h"
#include "core/threading.h"
#include "core/workspace.h"
#include "kernels/registry.h"

namespace convkit {
namespace {

using std::int64_t;

// Below this many multiply-adds per thread, waking another thread costs more than it saves.
constexpr int64_t kMinMacsPerThread = int64_t{1} << 16;
constexpr int kMaxTileElements = 16 * 32;

// B rows [0, kc) x cols [0, nc) into NR-column micro-panels (last one zero-padded).
template <class T>
void pack_b(const T* b, int64_t rs, int64_t cs, int64_t kc, int64_t nc, int nr, T* dst) {
  const int64_t panel_size = kc * nr;
  if (cs == 1) {
    // Row-major B: walk each row once, front to back, dealing its NR-wide pieces out to the panels.
    // (Walking panel by panel would interleave kc row streams, more than the prefetcher tracks.)
    const int64_t full_panels = nc / nr, tail = nc - full_panels * nr;
    for (int64_t p = 0; p < kc; ++p) {
      const T* row = b + p * rs;
      T* out = dst + p * nr;
      for (int64_t q = 0; q < full_panels; ++q) std::copy(row + q * nr, row + (q + 1) * nr, out + q * panel_size);
      if (tail > 0) {
        T* last = out + full_panels * panel_size;
        std::copy(row + full_panels * nr, row + nc, last);
        std::fill(last + tail, last + nr, T(0));
      }
    }
    return;
  }
  for (int64_t j0 = 0; j0 < nc; j0 += nr, dst += panel_size) {
    const int64_t cols = std::min<int64_t>(nr, nc - j0);
    for (int64_t p = 0; p < kc; ++p) {
      const T* row = b + p * rs + j0 * cs;
      for (int64_t j = 0; j < cols; ++j) dst[p * nr + j] = row[j * cs];
      std::fill(dst + p * nr + cols, dst + (p + 1) * nr, T(0));
    }
  }
}

template <class T>
void apply_epilogue(T* c, int64_t ldc, int64_t rows, int64_t cols, int64_t col0, const GemmEpilogue<T>& ep) {
  if (ep.bias == nullptr && ep.activation == Activation::none) return;
  for (int64_t i = 0; i < rows; ++i) {
    T* row = c + i * ldc;
    for (int64_t j = 0; j < cols; ++j) {
      row[j] = activate(ep.bias ? row[j] + ep.bias[col0 + j] : row[j], ep.activation, ep.negative_slope);
    }
  }
}

template <class T>
struct Problem {
  const PackSourceA<T>& a;
  const PackSourceB<T>& b;
  MatrixRef<T> c;
  T alpha, beta;
  const GemmEpilogue<T>& epilogue;
  const GemmUkernel<T>& kernel;
  bool b_whole;  // every thread packs its columns of B whole, once (see packs_b_whole)
};

// Whether a thread's columns of B, packed whole (all of k), fit beside the A block in L2: then they are
// packed once and each A block meets all of them in turn, so that C is written once instead of once per
// k slice. That is the narrow GEMM of a convolution with few output channels (conv3d: n = 32, k = 864).
constexpr int64_t kPackedBBudgetBytes = 192 * 1024;
template <class T>
bool packs_b_whole(int64_t n, int64_t k, const GemmUkernel<T>& uk) {
  return k > uk.kc && n <= uk.nc && round_up(n, int64_t(uk.nr)) * k * int64_t(sizeof(T)) <= kPackedBBudgetBytes;
}

// The length of near-equal blocks of at most `block` that cover `total` (no short last block).
int64_t balanced_block(int64_t total, int64_t block) { return ceil_div(total, ceil_div(total, block)); }

// The MR x NR tiles of one packed A block against one packed B panel.
template <class T>
void macro_kernel(const Problem<T>& pr, const T* ap, const T* bp, int64_t ic, int64_t jc, int64_t mc,
                  int64_t nc, int64_t kc, T beta, bool last_slice) {
  const GemmUkernel<T>& uk = pr.kernel;
  const int64_t ldc = pr.c.row_stride;
  alignas(64) T edge[kMaxTileElements];
  for (int64_t jr = 0; jr < nc; jr += uk.nr) {
    const int64_t cols = std::min<int64_t>(uk.nr, nc - jr);
    for (int64_t ir = 0; ir < mc; ir += uk.mr) {
      const int64_t rows = std::min<int64_t>(uk.mr, mc - ir);
      T* tile = pr.c.data + (ic + ir) * ldc + (jc + jr);
      if (rows == uk.mr && cols == uk.nr) {
        uk.run(kc, ap + ir * kc, bp + jr * kc, tile, ldc, beta);
      } else {  // partial tile: compute the full tile aside, merge the valid part
        uk.run(kc, ap + ir * kc, bp + jr * kc, edge, uk.nr, T(0));
        for (int64_t i = 0; i < rows; ++i) {
          for (int64_t j = 0; j < cols; ++j) {
            T& out = tile[i * ldc + j];
            out = beta == T(0) ? edge[i * uk.nr + j] : edge[i * uk.nr + j] + beta * out;
          }
        }
      }
      if (last_slice) apply_epilogue(tile, ldc, rows, cols, jc + jr, pr.epilogue);
    }
  }
}

// One thread's share: C rows [m0, m1) x cols [n0, n1), all of k.
template <class T>
void gemm_block(const Problem<T>& pr, int64_t m0, int64_t m1, int64_t n0, int64_t n1, T* ap, T* bp) {
  const GemmUkernel<T>& uk = pr.kernel;
  const int64_t k = pr.a.cols();
  const int64_t kc_block = balanced_block(k, uk.kc);
  if (pr.b_whole) {
    // All of B packed once, slice after slice; then each A block runs through every k slice while its
    // mc x n block of C is still in cache (the order below would stream all of C once per slice).
    const int64_t nc = n1 - n0, panel_width = round_up(nc, int64_t(uk.nr));
    for (int64_t pc = 0; pc < k; pc += kc_block) {
      pr.b.pack(pc, n0, std::min(kc_block, k - pc), nc, uk.nr, bp + pc * panel_width);
    }
    for (int64_t ic = m0; ic < m1; ic += uk.mc) {
      const int64_t mc = std::min(uk.mc, m1 - ic);
      for (int64_t pc = 0; pc < k; pc += kc_block) {
        const int64_t kc = std::min(kc_block, k - pc);
        pr.a.pack(ic, pc, mc, kc, uk, pr.alpha, ap);
        macro_kernel(pr, ap, bp + pc * panel_width, ic, n0, mc, nc, kc, pc == 0 ? pr.beta : T(1), pc + kc == k);
      }
    }
    return;
  }
  for (int64_t jc = n0; jc < n1; jc += uk.nc) {
    const int64_t nc = std::min(uk.nc, n1 - jc);
    for (int64_t pc = 0; pc < k; pc += kc_block) {
      const int64_t kc = std::min(kc_block, k - pc);
      pr.b.pack(pc, jc, kc, nc, uk.nr, bp);
      const T beta = pc == 0 ? pr.beta : T(1);
      const bool last_slice = pc + kc == k;
      for (int64_t ic = m0; ic < m1; ic += uk.mc) {
        const int64_t mc = std::min(uk.mc, m1 - ic);
        pr.a.pack(ic, pc, mc, kc, uk, pr.alpha, ap);
        macro_kernel(pr, ap, bp, ic, jc, mc, nc, kc, beta, last_slice);
      }
    }
  }
}

struct ThreadGrid {
  int rows = 1, cols = 1;
  int threads() const { return rows * cols; }
};

// The largest grid of at most `threads` blocks that gives every block a tile. Among those, the least
// packing per thread: a block of mb x nb packs about k * (mb + nb) elements, and A's elements count
// double because packing A gathers MR strided rows while packing B copies contiguous rows.
ThreadGrid choose_grid(int threads, int64_t m, int64_t n, int64_t k, int mr, int nr) {
  const int64_t m_tiles = ceil_div(m, mr), n_tiles = ceil_div(n, nr);
  const double macs = double(m) * double(n) * double(k);  // may exceed int64 for absurd shapes
  threads = static_cast<int>(std::max(1.0, std::min<double>(threads, macs / kMinMacsPerThread)));
  for (int t = threads; t > 1; --t) {
    ThreadGrid best;
    int64_t best_perimeter = std::numeric_limits<int64_t>::max();
    for (int rows = 1; rows <= t; ++rows) {
      if (t % rows != 0 || rows > m_tiles || t / rows > n_tiles) continue;
      const int64_t perimeter = 2 * ceil_div(m_tiles, rows) * mr + ceil_div(n_tiles, t / rows) * nr;
      if (perimeter < best_perimeter) best_perimeter = perimeter, best = {rows, t / rows};
    }
    if (best.threads() == t) return best;
  }
  return {};
}

// Per-thread packing space, sized for the largest block a thread can see; 64-byte aligned slots. B is
// packed whole (packs_b_whole) only where that fits the workspace limit too.
struct PackingSpace {
  ThreadGrid grid;
  int64_t a_elements, b_elements;
  bool b_whole;

  int64_t per_thread() const { return checked_add(a_elements, b_elements, "gemm workspace"); }
  template <class T>
  int64_t bytes() const {
    return checked_mul(checked_mul(per_thread(), grid.threads(), "gemm workspace"), int64_t(sizeof(T)), "gemm workspace");
  }

  template <class T>
  static PackingSpace of(int64_t m, int64_t n, int64_t k, const GemmUkernel<T>& kernel, int threads) {
    PackingSpace s{choose_grid(threads, m, n, k, kernel.mr, kernel.nr), 0, 0, false};
    s.a_elements = round_up(checked_mul(round_up(std::min(kernel.mc, m), kernel.mr), std::min(kernel.kc, k), "gemm A panel"), 16);
    const auto b_panel = [&](int64_t rows) {
      return round_up(checked_mul(round_up(std::min(kernel.nc, n), kernel.nr), rows, "gemm B panel"), 16);
    };
    if (packs_b_whole(n, k, kernel)) {  // both terms are small here: no overflow
      s.b_whole = (s.a_elements + b_panel(k)) * int64_t(sizeof(T)) * s.grid.threads() <= workspace_available();
    }
    s.b_elements = b_panel(s.b_whole ? k : std::min(kernel.kc, k));
    return s;
  }
};

template <class T>
void scale_and_finish(MatrixRef<T> c, T beta, const GemmEpilogue<T>& ep) {  // the k == 0 product
  for (int64_t i = 0; i < c.rows; ++i) {
    T* row = c.data + i * c.row_stride;
    for (int64_t j = 0; j < c.cols; ++j) row[j] = beta == T(0) ? T(0) : beta * row[j];
    apply_epilogue(row, c.row_stride, 1, c.cols, 0, ep);
  }
}

template <class T>
void check_shapes(const PackSourceA<T>& a, const PackSourceB<T>& b, const MatrixRef<T>& c) {
  if (a.cols() != b.rows() || c.rows != a.rows() || c.cols != b.cols() || a.rows() < 0 || a.cols() < 0 ||
      b.cols() < 0) {
    throw std::invalid_argument("gemm: shapes do not match: A " + std::to_string(a.rows()) + "x" +
                                std::to_string(a.cols()) + ", B " + std::to_string(b.rows()) + "x" +
                                std::to_string(b.cols()) + ", C " + std::to_string(c.rows) + "x" +
                                std::to_string(c.cols));
  }
  if (c.col_stride != 1 && c.cols > 1) throw std::invalid_argument("gemm: C must have unit column stride");
}

}  // namespace

template <class T>
void StridedA<T>::pack(int64_t i0, int64_t p0, int64_t mc, int64_t kc, const GemmUkernel<T>& uk, T alpha,
                       T* dst) const noexcept {
  const int mr = uk.mr;
  const T* block = a_.data + i0 * a_.row_stride + p0 * a_.col_stride;
  for (int64_t i = 0; i < mc; i += mr, dst += mr * kc) {
    const int rows = static_cast<int>(std::min<int64_t>(mr, mc - i));
    const T* panel = block + i * a_.row_stride;
    if (a_.col_stride == 1) {  // contiguous rows: the kernel's own packer
      const T* row_ptrs[kMaxKernelRows];
      for (int r = 0; r < mr; ++r) row_ptrs[r] = r < rows ? panel + r * a_.row_stride : nullptr;
      uk.pack_a_rows(kc, 0, kc, row_ptrs, alpha, dst);
      continue;
    }
    // Strided rows, written with the panel layout's steps. A transposed row-major matrix (dy^T in conv
    // backward weights) is walked the way it is stored: a panel column of `rows` contiguous values at a time.
    const int64_t row_step = panel_index(uk.a_layout, mr, kc, 1, 0), p_step = panel_index(uk.a_layout, mr, kc, 0, 1);
    if (a_.row_stride == 1) {
      for (int64_t p = 0; p < kc; ++p) {
        const T* column = panel + p * a_.col_stride;
        for (int r = 0; r < rows; ++r) dst[r * row_step + p * p_step] = alpha * column[r];
      }
    } else {
      for (int r = 0; r < rows; ++r) {
        const T* row = panel + r * a_.row_stride;
        for (int64_t p = 0; p < kc; ++p) dst[r * row_step + p * p_step] = alpha * row[p * a_.col_stride];
      }
    }
    for (int r = rows; r < mr; ++r) {
      for (int64_t p = 0; p < kc; ++p) dst[r * row_step + p * p_step] = T(0);
    }
  }
}

template <class T>
void StridedB<T>::pack(int64_t p0, int64_t j0, int64_t kc, int64_t nc, int nr, T* dst) const noexcept {
  pack_b(b_.data + p0 * b_.row_stride + j0 * b_.col_stride, b_.row_stride, b_.col_stride, kc, nc, nr, dst);
}

template <class T>
int64_t gemm_workspace_bound(int64_t m, int64_t n, int64_t k, const GemmUkernel<T>& kernel, int threads) {
  if (m == 0 || n == 0 || k == 0) return 0;
  return PackingSpace::of<T>(m, n, k, kernel, threads).template bytes<T>();
}

template <class T>
void gemm_cpu(MatrixRef<const T> a, MatrixRef<const T> b, MatrixRef<T> c, T alpha, T beta,
              const GemmEpilogue<T>& epilogue, const GemmUkernel<T>& kernel, int threads) {
  gemm_cpu(StridedA<T>(a), b, c, alpha, beta, epilogue, kernel, threads);
}

template <class T>
void gemm_cpu(const PackSourceA<T>& a, MatrixRef<const T> b, MatrixRef<T> c, T alpha, T beta,
              const GemmEpilogue<T>& epilogue, const GemmUkernel<T>& kernel, int threads) {
  gemm_cpu(a, StridedB<T>(b), c, alpha, beta, epilogue, kernel, threads);
}

template <class T>
void gemm_cpu(const PackSourceA<T>& a, const PackSourceB<T>& b, MatrixRef<T> c, T alpha, T beta,
              const GemmEpilogue<T>& epilogue, const GemmUkernel<T>& kernel, int threads) {
  check_shapes(a, b, c);
  if (kernel.mr * kernel.nr > kMaxTileElements || kernel.mr > kMaxKernelRows) {
    throw std::logic_error(std::string("gemm: kernel ") + kernel.name + " has a tile larger than the driver allows");
  }
  const int64_t m = a.rows(), n = b.cols(), k = a.cols();
  if (m == 0 || n == 0) return;
  if (k == 0) return scale_and_finish(c, beta, epilogue);

  const PackingSpace space_needed = PackingSpace::of<T>(m, n, k, kernel, threads);
  const ThreadGrid grid = space_needed.grid;
  const int64_t a_elems = space_needed.a_elements, per_thread = space_needed.per_thread();
  const bool b_whole = space_needed.b_whole;
  const WorkspaceCharge packing(space_needed.template bytes<T>(), "gemm packing panels");
  thread_local AlignedBuffer workspace;  // owned by the calling thread, reused across calls
  T* space = workspace.reserve_elements<T>(packing);

  const Problem<T> problem{a, b, c, alpha, beta, epilogue, kernel, b_whole};
  const int64_t m_tiles = ceil_div(m, kernel.mr), n_tiles = ceil_div(n, kernel.nr);
  run_parallel(grid.threads(), [&](int tid, int team) {
    // A smaller team than asked for (nested parallelism, runtime limits) takes the blocks in turn.
    for (int block = tid; block < grid.threads(); block += team) {
      const int64_t r = block / grid.cols, q = block % grid.cols;
      const int64_t m0 = std::min(m, r * m_tiles / grid.rows * kernel.mr);
      const int64_t m1 = std::min(m, (r + 1) * m_tiles / grid.rows * kernel.mr);
      const int64_t n0 = std::min(n, q * n_tiles / grid.cols * kernel.nr);
      const int64_t n1 = std::min(n, (q + 1) * n_tiles / grid.cols * kernel.nr);
      T* ap = space + tid * per_thread;
      gemm_block(problem, m0, m1, n0, n1, ap, ap + a_elems);
    }
  });
}


template <class T>
DeviceTable<GemmFn<T>>& gemm_table() {
  static DeviceTable<GemmFn<T>> table = [] {
    DeviceTable<GemmFn<T>> t("gemm");
    t.set(Device::cpu, [](MatrixRef<const T> a, MatrixRef<const T> b, MatrixRef<T> c, T alpha, T beta,
                          const GemmEpilogue<T>& ep) {
      gemm_cpu(a, b, c, alpha, beta, ep, selected_gemm_ukernel<T>(), num_threads());
    });
    return t;
  }();
  return table;
}

template <class T>
void gemm(MatrixRef<const T> a, MatrixRef<const T> b, MatrixRef<T> c, T alpha, T beta,
          const GemmEpilogue<T>& epilogue) {
  const Device device = common_device("gemm", a.device, b.device, c.device);
  gemm_table<T>().get(device)(a, b, c, alpha, beta, epilogue);
}

#define CONVKIT_INSTANTIATE_GEMM(T)                                                                     \
  template void gemm<T>(MatrixRef<const T>, MatrixRef<const T>, MatrixRef<T>, T, T, const GemmEpilogue<T>&); \
  template void gemm_cpu<T>(MatrixRef<const T>, MatrixRef<const T>, MatrixRef<T>, T, T,                 \
                            const GemmEpilogue<T>&, const GemmUkernel<T>&, int);                        \
  template void gemm_cpu<T>(const PackSourceA<T>&, MatrixRef<const T>, MatrixRef<T>, T, T,              \
                            const GemmEpilogue<T>&, const GemmUkernel<T>&, int);                        \
  template void gemm_cpu<T>(const PackSourceA<T>&, const PackSourceB<T>&, MatrixRef<T>, T, T,          \
                            const GemmEpilogue<T>&, const GemmUkernel<T>&, int);                        \
  template int64_t gemm_workspace_bound<T>(int64_t, int64_t, int64_t, const GemmUkernel<T>&, int);      \
  template class StridedA<T>;                                                                           \
  template class StridedB<T>;                                                                           \
  template DeviceTable<GemmFn<T>>& gemm_table<T>();
CONVKIT_INSTANTIATE_GEMM(float)
CONVKIT_INSTANTIATE_GEMM(double)
#undef CONVKIT_INSTANTIATE_GEMM

}  // namespace convkit
