// The row view of a channels-last array that the direct convolution drivers (depthwise, few channels)
// walk: a row is one (n, d, h) of W pixels x C channels.
#pragma once
#include <array>
#include <cstdint>

namespace convkit {

// A channels-last array (batch, spatial[0], spatial[1], spatial[2], channels); a row is one (n, d, h).
struct PixelLayout {
  std::int64_t batch;
  std::array<std::int64_t, 3> spatial;
  std::int64_t channels;

  std::int64_t rows() const { return batch * spatial[0] * spatial[1]; }
  std::int64_t row_elements() const { return spatial[2] * channels; }
  std::int64_t image_elements() const { return spatial[0] * spatial[1] * row_elements(); }
  std::int64_t row_of(std::int64_t n, std::int64_t d, std::int64_t h) const {
    return (n * spatial[0] + d) * spatial[1] + h;
  }
  std::array<std::int64_t, 3> coordinates(std::int64_t row) const {  // (n, d, h)
    return {row / (spatial[0] * spatial[1]), row / spatial[1] % spatial[0], row % spatial[1]};
  }
};

}  // namespace convkit
