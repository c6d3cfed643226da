// Random array drivers (formulas and stream layout in random_fill.h). Threads take contiguous shares of
// the values; a block that straddles two shares is computed by both threads, each keeping its own values.
#include "ops/random_fill.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>

#include "core/checked_math.h"
#include "ops/parallel_shares.h"

namespace convkit {
namespace {

using std::int64_t;

// How a value of type T is read from a block: which words (slot s of a block is one value), as a number in
// [0, 1) (unit) or in (0, 1) (open).
template <class T>
struct Words;

template <>
struct Words<float> {
  static constexpr int kValuesPerBlock = 4;
  static double unit(const std::uint32_t* b, int slot) { return philox::unit_float(b[slot]); }
  static double open(const std::uint32_t* b, int slot) { return philox::open_unit(b[slot]); }
};

template <>
struct Words<double> {
  static constexpr int kValuesPerBlock = 2;
  static double unit(const std::uint32_t* b, int slot) { return philox::unit_double(b[2 * slot], b[2 * slot + 1]); }
  static double open(const std::uint32_t* b, int slot) { return philox::open_unit(b[2 * slot], b[2 * slot + 1]); }
};

// Blocks computed together (core/philox.h: philox4x32_10_lanes): independent multiply chains that overlap
// (4 measured fastest on Zen 3; more spill registers). A share's blocks are made kChunkBlocks at a time
// into a buffer on the stack, apart from the conversion of their words to values.
constexpr int kLanes = 4;
constexpr int kChunkBlocks = 64;

// Calls values(block, first, begin, end) for every block a value of [0, n) falls in, in parallel: `block`
// points to the block's 4 words, `first` is the index of its slot 0, and slots [begin, end) are the values
// to write. cost_per_value weighs the work against the cost of waking a thread (ops/parallel_shares.h).
template <int kValuesPerBlock, class Values>
void for_each_block(const philox::Stream& stream, int64_t n, int64_t cost_per_value, Values&& values) {
  for_each_share(n, cost_per_value, [&](int64_t begin, int64_t end) {
    std::uint32_t words[4 * kChunkBlocks];
    const int64_t end_block = ceil_div(end, kValuesPerBlock);
    for (int64_t chunk = begin / kValuesPerBlock; chunk < end_block; chunk += kChunkBlocks) {
      const int blocks = static_cast<int>(std::min<int64_t>(kChunkBlocks, end_block - chunk));
      stream.words<kLanes>(static_cast<std::uint64_t>(chunk), static_cast<int>(round_up(blocks, kLanes)), words);
      for (int j = 0; j < blocks; ++j) {
        const int64_t first = (chunk + j) * kValuesPerBlock;
        if (first >= begin && first + kValuesPerBlock <= end) {
          values(words + 4 * j, first, 0, kValuesPerBlock);  // constant bounds: the common case, unrolled
        } else {
          values(words + 4 * j, first, static_cast<int>(std::max(begin, first) - first),
                 static_cast<int>(std::min<int64_t>(end - first, kValuesPerBlock)));
        }
      }
    }
  });
}

void check_count(int64_t n, const char* what) {
  if (n < 0) throw std::invalid_argument(std::string(what) + ": negative count " + std::to_string(n));
}

}  // namespace

template <class T>
void fill_uniform(const philox::Stream& stream, int64_t n, double low, double high, T* out) {
  check_count(n, "fill_uniform");
  using W = Words<T>;
  // The lambdas capture by value: their stores could alias anything captured by reference.
  for_each_block<W::kValuesPerBlock>(stream, n, 1, [=](const std::uint32_t* b, int64_t first, int begin, int end) {
    for (int s = begin; s < end; ++s) out[first + s] = static_cast<T>(low + (high - low) * W::unit(b, s));
  });
}

template <class T>
void fill_normal(const philox::Stream& stream, int64_t n, double mean, double std, T* out) {
  check_count(n, "fill_normal");
  using W = Words<T>;
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  constexpr int64_t kCostPerValue = 16;  // a logarithm, a square root and a sine or cosine per value pair
  for_each_block<W::kValuesPerBlock>(stream, n, kCostPerValue, [=](const std::uint32_t* b, int64_t first, int begin, int end) {
    for (int pair = begin / 2 * 2; pair < end; pair += 2) {
      const double radius = std * std::sqrt(-2.0 * std::log(W::open(b, pair)));
      const double angle = kTwoPi * W::unit(b, pair + 1);
      if (pair >= begin) out[first + pair] = static_cast<T>(mean + radius * std::cos(angle));
      if (pair + 1 < end) out[first + pair + 1] = static_cast<T>(mean + radius * std::sin(angle));
    }
  });
}

void fill_bernoulli(const philox::Stream& stream, int64_t n, double p, std::uint8_t* out) {
  check_count(n, "fill_bernoulli");
  if (!(p >= 0.0 && p <= 1.0)) throw std::invalid_argument("fill_bernoulli: p must be in [0, 1], got " + std::to_string(p));
  // 64 bits, so that p = 1 (threshold 2^32) keeps every word.
  const auto threshold = static_cast<std::uint64_t>(p * 0x1p32);
  for_each_block<4>(stream, n, 1, [=](const std::uint32_t* b, int64_t first, int begin, int end) {
    for (int s = begin; s < end; ++s) out[first + s] = b[s] < threshold ? 1 : 0;
  });
}

void fill_bits(const philox::Stream& stream, int64_t n, std::uint64_t* out) {
  check_count(n, "fill_bits");
  for_each_block<2>(stream, n, 1, [=](const std::uint32_t* b, int64_t first, int begin, int end) {
    for (int s = begin; s < end; ++s) out[first + s] = (static_cast<std::uint64_t>(b[2 * s]) << 32) | b[2 * s + 1];
  });
}

#define CONVKIT_INSTANTIATE_RANDOM_FILL(T)                                                      \
  template void fill_uniform<T>(const philox::Stream&, int64_t, double, double, T*);            \
  template void fill_normal<T>(const philox::Stream&, int64_t, double, double, T*);
CONVKIT_INSTANTIATE_RANDOM_FILL(float)
CONVKIT_INSTANTIATE_RANDOM_FILL(double)
#undef CONVKIT_INSTANTIATE_RANDOM_FILL

}  // namespace convkit
