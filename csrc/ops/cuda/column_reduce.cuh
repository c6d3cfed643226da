// Deterministic column sums of a (rows x cols) row-major matrix, in double: bias gradients, batch-norm
// statistics, depthwise weight gradients. value(row, col) gives the term (so a sum of products needs no
// temporary), store(col, sum) writes the result.
//
// Pass 1: blocks of 32 columns x 8 row-lanes each sum a fixed chunk of rows into a partial per chunk;
// pass 2: one thread per column adds the chunks' partials in order. The order depends only on the shape.
#pragma once
#include <cstdint>

#include "core/cuda/check.cuh"
#include "core/cuda/device_array.h"

namespace convkit::cuda {

constexpr int kReduceCols = 32, kReduceLanes = 8;

template <class Value>
__global__ void column_partial_sums(std::int64_t rows, std::int64_t cols, std::int64_t chunk_rows, Value value,
                                    double* partial) {
  __shared__ double lanes[kReduceLanes][kReduceCols];
  const std::int64_t col = static_cast<std::int64_t>(blockIdx.x) * kReduceCols + threadIdx.x;
  const std::int64_t begin = static_cast<std::int64_t>(blockIdx.y) * chunk_rows;
  const std::int64_t end = begin + chunk_rows < rows ? begin + chunk_rows : rows;
  double sum = 0.0;
  if (col < cols) {
    for (std::int64_t r = begin + threadIdx.y; r < end; r += kReduceLanes) sum += value(r, col);
  }
  lanes[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    for (int lane = 1; lane < kReduceLanes; ++lane) sum += lanes[lane][threadIdx.x];
    partial[blockIdx.y * cols + col] = sum;
  }
}

template <class Store>
__global__ void column_finish(std::int64_t cols, int chunks, const double* partial, Store store) {
  CONVKIT_GRID_STRIDE_LOOP(col, cols) {
    double sum = 0.0;
    for (int c = 0; c < chunks; ++c) sum += partial[c * cols + col];
    store(col, sum);
  }
}

template <class Value, class Store>
void column_sums(std::int64_t rows, std::int64_t cols, Value value, Store store) {
  if (cols == 0) return;
  constexpr std::int64_t kMaxChunks = 256, kMinChunkRows = 512;
  std::int64_t chunk_rows = (rows + kMaxChunks - 1) / kMaxChunks;
  if (chunk_rows < kMinChunkRows) chunk_rows = kMinChunkRows;
  const int chunks = static_cast<int>(rows == 0 ? 1 : (rows + chunk_rows - 1) / chunk_rows);
  DeviceArray<double> partial(chunks * cols);
  const dim3 grid(static_cast<unsigned>((cols + kReduceCols - 1) / kReduceCols), static_cast<unsigned>(chunks));
  column_partial_sums<<<grid, dim3(kReduceCols, kReduceLanes)>>>(rows, cols, chunk_rows, value, partial.get());
  check_launch("column_partial_sums");
  column_finish<<<blocks_for(cols), kThreads>>>(cols, chunks, partial.get(), store);
  check_launch("column_finish");
}

}  // namespace convkit::cuda
