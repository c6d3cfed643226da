// Convolution on the GPU: im2col + cuBLAS for the general case (one strided-batched GEMM over the groups),
// direct kernels for depthwise convolutions (groups == C_in), and a gather col2im (each input element sums
// the column entries that read it), so that every result is deterministic.
//
// Columns of a chunk of images: row (n, od, oh, ow), column (g, kd, kh, kw, c) with c < C_in / groups, so
// that group g's block of K_g = taps * C_in / groups columns matches the rows of w viewed as (K_g, C_out)
// and the groups are evenly strided. A 1x1, stride-1, unpadded convolution reads x itself as the columns.
#include <algorithm>

#include "core/cuda/check.cuh"
#include "core/cuda/device_array.h"
#include "ops/cuda/column_reduce.cuh"
#include "ops/cuda/device_ops.h"
#include "ops/cuda/gemm_launch.cuh"

namespace convkit::cuda {
namespace {

// The column matrix of a few images stays under this many bytes; larger batches run in chunks of images.
constexpr int64_t kColumnBytes = int64_t(512) << 20;

struct Shape {
  int64_t taps, group_in, group_out, k_group, out_pixels, in_pixels;
};

Shape shape_of(const ConvGeometry& g) {
  const int64_t taps = g.kernel[0] * g.kernel[1] * g.kernel[2];
  const int64_t group_in = g.in_channels / g.groups;
  return {taps, group_in, g.out_channels / g.groups, taps * group_in, g.out[0] * g.out[1] * g.out[2],
          g.in[0] * g.in[1] * g.in[2]};
}

bool columns_are_x(const ConvGeometry& g) {
  for (int a = 0; a < 3; ++a) {
    if (g.kernel[a] != 1 || g.stride[a] != 1 || g.pad_before[a] != 0) return false;
  }
  return true;
}

int64_t images_per_chunk(const ConvGeometry& g, const Shape& s, int64_t item) {
  const int64_t per_image = std::max<int64_t>(1, s.out_pixels * g.groups * s.k_group * item);
  return std::clamp<int64_t>(kColumnBytes / per_image, 1, std::max<int64_t>(g.batch, 1));
}

// The input coordinate one tap reads for one output coordinate (may lie in the padding).
__device__ inline int64_t input_coordinate(int64_t o, int64_t tap, int64_t stride, int64_t dilation, int64_t pad) {
  return o * stride - pad + tap * dilation;
}

template <class T>
__global__ void im2col_kernel(ConvGeometry g, Shape s, int64_t images, const T* x, T* cols) {
  const int64_t width = g.groups * s.k_group;
  CONVKIT_GRID_STRIDE_LOOP(i, images * s.out_pixels * width) {
    const int64_t row = i / width, col = i % width;
    const int64_t group = col / s.k_group, c = col % s.group_in, tap = col % s.k_group / s.group_in;
    const int64_t n = row / s.out_pixels, pixel = row % s.out_pixels;
    const int64_t o[3] = {pixel / (g.out[1] * g.out[2]), pixel / g.out[2] % g.out[1], pixel % g.out[2]};
    const int64_t t[3] = {tap / (g.kernel[1] * g.kernel[2]), tap / g.kernel[2] % g.kernel[1], tap % g.kernel[2]};
    int64_t offset = n;
    bool inside = true;
    for (int a = 0; a < 3; ++a) {
      const int64_t in = input_coordinate(o[a], t[a], g.stride[a], g.dilation[a], g.pad_before[a]);
      inside = inside && in >= 0 && in < g.in[a];
      offset = offset * g.in[a] + in;
    }
    cols[i] = inside ? x[offset * g.in_channels + group * s.group_in + c] : T(0);
  }
}

// dx[n, p, ci] = the sum of the column entries that read input pixel p, channel ci: for each tap, the output
// pixel whose window puts that tap on p (if the stride lands exactly there).
template <class T>
__global__ void col2im_kernel(ConvGeometry g, Shape s, int64_t images, const T* dcols, T* dx) {
  const int64_t width = g.groups * s.k_group;
  CONVKIT_GRID_STRIDE_LOOP(i, images * s.in_pixels * g.in_channels) {
    const int64_t ci = i % g.in_channels, pixel = i / g.in_channels % s.in_pixels, n = i / g.in_channels / s.in_pixels;
    const int64_t p[3] = {pixel / (g.in[1] * g.in[2]), pixel / g.in[2] % g.in[1], pixel % g.in[2]};
    const int64_t group = ci / s.group_in, c = ci % s.group_in;
    double sum = 0.0;
    for (int64_t tap = 0; tap < s.taps; ++tap) {
      const int64_t t[3] = {tap / (g.kernel[1] * g.kernel[2]), tap / g.kernel[2] % g.kernel[1], tap % g.kernel[2]};
      int64_t out_pixel = 0;
      bool hit = true;
      for (int a = 0; a < 3 && hit; ++a) {
        const int64_t shifted = p[a] + g.pad_before[a] - t[a] * g.dilation[a];
        const int64_t o = shifted / g.stride[a];
        hit = shifted >= 0 && shifted % g.stride[a] == 0 && o < g.out[a];
        out_pixel = out_pixel * g.out[a] + o;
      }
      if (hit) sum += dcols[(n * s.out_pixels + out_pixel) * width + group * s.k_group + tap * s.group_in + c];
    }
    dx[i] = static_cast<T>(sum);
  }
}

// ---- Depthwise: groups == C_in, channel multiplier C_out / C_in; w is (taps, 1, C_out).

template <class T>
__global__ void depthwise_forward_kernel(ConvGeometry g, Shape s, const T* x, const T* w, const T* bias, T* y,
                                         Activation activation, T negative_slope) {
  const int64_t multiplier = g.out_channels / g.in_channels;
  CONVKIT_GRID_STRIDE_LOOP(i, g.batch * s.out_pixels * g.out_channels) {
    const int64_t co = i % g.out_channels, pixel = i / g.out_channels % s.out_pixels;
    const int64_t n = i / g.out_channels / s.out_pixels, ci = co / multiplier;
    const int64_t o[3] = {pixel / (g.out[1] * g.out[2]), pixel / g.out[2] % g.out[1], pixel % g.out[2]};
    T sum = bias ? bias[co] : T(0);
    for (int64_t tap = 0; tap < s.taps; ++tap) {
      const int64_t t[3] = {tap / (g.kernel[1] * g.kernel[2]), tap / g.kernel[2] % g.kernel[1], tap % g.kernel[2]};
      int64_t offset = n;
      bool inside = true;
      for (int a = 0; a < 3; ++a) {
        const int64_t in = input_coordinate(o[a], t[a], g.stride[a], g.dilation[a], g.pad_before[a]);
        inside = inside && in >= 0 && in < g.in[a];
        offset = offset * g.in[a] + in;
      }
      if (inside) sum += x[offset * g.in_channels + ci] * w[tap * g.out_channels + co];
    }
    y[i] = activate(sum, activation, negative_slope);
  }
}

template <class T>
__global__ void depthwise_backward_data_kernel(ConvGeometry g, Shape s, const T* dy, const T* w, T* dx) {
  const int64_t multiplier = g.out_channels / g.in_channels;
  CONVKIT_GRID_STRIDE_LOOP(i, g.batch * s.in_pixels * g.in_channels) {
    const int64_t ci = i % g.in_channels, pixel = i / g.in_channels % s.in_pixels, n = i / g.in_channels / s.in_pixels;
    const int64_t p[3] = {pixel / (g.in[1] * g.in[2]), pixel / g.in[2] % g.in[1], pixel % g.in[2]};
    double sum = 0.0;
    for (int64_t tap = 0; tap < s.taps; ++tap) {
      const int64_t t[3] = {tap / (g.kernel[1] * g.kernel[2]), tap / g.kernel[2] % g.kernel[1], tap % g.kernel[2]};
      int64_t out_pixel = 0;
      bool hit = true;
      for (int a = 0; a < 3 && hit; ++a) {
        const int64_t shifted = p[a] + g.pad_before[a] - t[a] * g.dilation[a];
        const int64_t o = shifted / g.stride[a];
        hit = shifted >= 0 && shifted % g.stride[a] == 0 && o < g.out[a];
        out_pixel = out_pixel * g.out[a] + o;
      }
      if (!hit) continue;
      for (int64_t m = 0; m < multiplier; ++m) {
        const int64_t co = ci * multiplier + m;
        const T grad = dy[(n * s.out_pixels + out_pixel) * g.out_channels + co];
        sum += static_cast<double>(grad) * w[tap * g.out_channels + co];
      }
    }
    dx[i] = static_cast<T>(sum);
  }
}

template <class T>
void depthwise_backward_weights(const ConvGeometry& g, const Shape& s, const T* dy, const T* x, T* dw) {
  const int64_t multiplier = g.out_channels / g.in_channels;
  for (int64_t tap = 0; tap < s.taps; ++tap) {
    const int64_t t[3] = {tap / (g.kernel[1] * g.kernel[2]), tap / g.kernel[2] % g.kernel[1], tap % g.kernel[2]};
    const ConvGeometry geometry = g;
    const int64_t out_pixels = s.out_pixels;
    const int64_t t0 = t[0], t1 = t[1], t2 = t[2];
    // Rows: every (n, output pixel); columns: C_out. The term is dy times the input this tap read.
    auto term = [=] __device__(int64_t row, int64_t co) -> double {
      const int64_t n = row / out_pixels, pixel = row % out_pixels;
      const int64_t o[3] = {pixel / (geometry.out[1] * geometry.out[2]), pixel / geometry.out[2] % geometry.out[1],
                            pixel % geometry.out[2]};
      const int64_t tt[3] = {t0, t1, t2};
      int64_t offset = n;
      for (int a = 0; a < 3; ++a) {
        const int64_t in = o[a] * geometry.stride[a] - geometry.pad_before[a] + tt[a] * geometry.dilation[a];
        if (in < 0 || in >= geometry.in[a]) return 0.0;
        offset = offset * geometry.in[a] + in;
      }
      return static_cast<double>(dy[row * geometry.out_channels + co]) *
             x[offset * geometry.in_channels + co / multiplier];
    };
    T* dw_tap = dw + tap * g.out_channels;
    column_sums(g.batch * s.out_pixels, g.out_channels, term,
                [dw_tap] __device__(int64_t co, double sum) { dw_tap[co] = static_cast<T>(sum); });
  }
}

bool is_depthwise(const ConvGeometry& g) { return g.groups == g.in_channels && g.groups > 1; }

}  // namespace

template <class T>
void conv_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, Activation activation,
                  T negative_slope) {
  const Shape s = shape_of(g);
  const int64_t total = g.batch * s.out_pixels * g.out_channels;
  if (total == 0) return;
  if (is_depthwise(g)) {
    depthwise_forward_kernel<<<blocks_for(total), kThreads>>>(g, s, x, w, bias, y, activation, negative_slope);
    check_launch("depthwise_forward_kernel");
    return;
  }
  const int64_t width = g.groups * s.k_group, chunk = images_per_chunk(g, s, sizeof(T));
  const bool direct = columns_are_x(g);
  DeviceArray<T> cols(direct ? 0 : chunk * s.out_pixels * width);
  for (int64_t n0 = 0; n0 < g.batch; n0 += chunk) {
    const int64_t images = std::min(chunk, g.batch - n0), rows = images * s.out_pixels;
    const T* columns = x + n0 * s.in_pixels * g.in_channels;
    if (!direct) {
      im2col_kernel<<<blocks_for(rows * width), kThreads>>>(g, s, images, columns, cols.get());
      check_launch("im2col_kernel");
      columns = cols.get();
    }
    T* y_chunk = y + n0 * s.out_pixels * g.out_channels;
    strided_batched_gemm<T>({false, columns, width, s.k_group}, {false, w, g.out_channels, s.group_out},
                            {y_chunk, g.out_channels, s.group_out}, rows, s.group_out, s.k_group, g.groups, T(1), T(0));
    gemm_epilogue(rows, g.out_channels, y_chunk, bias, activation, negative_slope);
  }
}

template <class T>
void conv_backward_data(const ConvGeometry& g, const T* dy, const T* w, T* dx) {
  const Shape s = shape_of(g);
  if (g.batch * s.in_pixels * g.in_channels == 0) return;
  if (is_depthwise(g)) {
    depthwise_backward_data_kernel<<<blocks_for(g.batch * s.in_pixels * g.in_channels), kThreads>>>(g, s, dy, w, dx);
    check_launch("depthwise_backward_data_kernel");
    return;
  }
  const int64_t width = g.groups * s.k_group, chunk = images_per_chunk(g, s, sizeof(T));
  const bool direct = columns_are_x(g);
  DeviceArray<T> dcols(direct ? 0 : chunk * s.out_pixels * width);
  for (int64_t n0 = 0; n0 < g.batch; n0 += chunk) {
    const int64_t images = std::min(chunk, g.batch - n0), rows = images * s.out_pixels;
    T* dx_chunk = dx + n0 * s.in_pixels * g.in_channels;
    T* columns = direct ? dx_chunk : dcols.get();
    strided_batched_gemm<T>({false, dy + n0 * s.out_pixels * g.out_channels, g.out_channels, s.group_out},
                            {true, w, g.out_channels, s.group_out}, {columns, width, s.k_group}, rows, s.k_group,
                            s.group_out, g.groups, T(1), T(0));
    if (!direct) {
      col2im_kernel<<<blocks_for(images * s.in_pixels * g.in_channels), kThreads>>>(g, s, images, columns, dx_chunk);
      check_launch("col2im_kernel");
    }
  }
}

template <class T>
void bias_gradient(int64_t rows, int64_t channels, const T* dy, T* db) {
  column_sums(rows, channels, [=] __device__(int64_t r, int64_t c) -> double { return dy[r * channels + c]; },
              [db] __device__(int64_t c, double sum) { db[c] = static_cast<T>(sum); });
}

template <class T>
void conv_backward_weights(const ConvGeometry& g, const T* dy, const T* x, T* dw, T* db) {
  const Shape s = shape_of(g);
  const int64_t rows_total = g.batch * s.out_pixels;
  if (db != nullptr) bias_gradient(rows_total, g.out_channels, dy, db);
  if (is_depthwise(g)) return depthwise_backward_weights(g, s, dy, x, dw);
  if (rows_total == 0) {
    fill_zero(dw, s.k_group * g.out_channels * static_cast<int64_t>(sizeof(T)));
    return;
  }
  const int64_t width = g.groups * s.k_group, chunk = images_per_chunk(g, s, sizeof(T));
  const bool direct = columns_are_x(g);
  DeviceArray<T> cols(direct ? 0 : chunk * s.out_pixels * width);
  for (int64_t n0 = 0; n0 < g.batch; n0 += chunk) {
    const int64_t images = std::min(chunk, g.batch - n0), rows = images * s.out_pixels;
    const T* columns = x + n0 * s.in_pixels * g.in_channels;
    if (!direct) {
      im2col_kernel<<<blocks_for(rows * width), kThreads>>>(g, s, images, columns, cols.get());
      check_launch("im2col_kernel");
      columns = cols.get();
    }
    // dW_g (K_g x C_out/g) += cols_g^T (K_g x rows) @ dY_g (rows x C_out/g); the first chunk overwrites.
    strided_batched_gemm<T>({true, columns, width, s.k_group},
                            {false, dy + n0 * s.out_pixels * g.out_channels, g.out_channels, s.group_out},
                            {dw, g.out_channels, s.group_out}, s.k_group, s.group_out, rows, g.groups, T(1),
                            n0 == 0 ? T(0) : T(1));
  }
}

#define CONVKIT_INSTANTIATE_CUDA_CONV(T)                                                                     \
  template void conv_forward<T>(const ConvGeometry&, const T*, const T*, const T*, T*, Activation, T);      \
  template void conv_backward_data<T>(const ConvGeometry&, const T*, const T*, T*);                          \
  template void conv_backward_weights<T>(const ConvGeometry&, const T*, const T*, T*, T*);                   \
  template void bias_gradient<T>(int64_t, int64_t, const T*, T*);
CONVKIT_INSTANTIATE_CUDA_CONV(float)
CONVKIT_INSTANTIATE_CUDA_CONV(double)
#undef CONVKIT_INSTANTIATE_CUDA_CONV

}  // namespace convkit::cuda
