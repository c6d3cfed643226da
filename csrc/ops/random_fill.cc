// Random array drivers (formulas and stream layout in random_fill.h). Threads take contiguous shares of
// the values; a block that straddles two shares is computed by both threads, each keeping its own values
// (and a Box-Muller pair that straddles two shares, likewise).
#include "ops/random_fill.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "core/checked_math.h"
#include "ops/parallel_shares.h"

namespace convkit {
namespace {

using std::int64_t;

// How a value of type T is read from its words: as a number in [0, 1) (unit) or in (0, 1) (open).
template <class T>
struct Words;

template <>
struct Words<float> {
  static constexpr int kPerValue = 1;
  static double unit(const std::uint32_t* w) { return philox::unit_float(w[0]); }
  static double open(const std::uint32_t* w) { return philox::open_unit(w[0]); }
};

template <>
struct Words<double> {
  static constexpr int kPerValue = 2;
  static double unit(const std::uint32_t* w) { return philox::unit_double(w[0], w[1]); }
  static double open(const std::uint32_t* w) { return philox::open_unit(w[0], w[1]); }
};

// A share's blocks are made kChunkBlocks at a time (philox::Stream::words, kLanes blocks per step: their
// multiply chains overlap; 4 measured fastest on Zen 3) into a buffer on the stack, then converted to values
// in a separate loop.
constexpr int kLanes = 4;
constexpr int kChunkBlocks = 64;

// Calls values(words, first, count) for consecutive runs [first, first + count) of the values [0, n) that
// take kWordsPerValue words each, in parallel; `words` points to value first's words, the others follow.
// cost_per_value weighs the work against the cost of waking a thread (ops/parallel_shares.h).
template <int kWordsPerValue, class Values>
void for_each_chunk(const philox::Stream& stream, int64_t n, int64_t cost_per_value, Values&& values) {
  constexpr int64_t kValuesPerBlock = 4 / kWordsPerValue;
  for_each_share(n, cost_per_value, [&](int64_t begin, int64_t end) {
    std::uint32_t words[4 * kChunkBlocks];
    for (int64_t block = begin / kValuesPerBlock; block * kValuesPerBlock < end; block += kChunkBlocks) {
      const int64_t first = std::max(begin, block * kValuesPerBlock);
      const int64_t last = std::min(end, (block + kChunkBlocks) * kValuesPerBlock);
      const int64_t blocks = ceil_div(last, kValuesPerBlock) - block;
      stream.words<kLanes>(static_cast<std::uint64_t>(block), static_cast<int>(round_up(blocks, kLanes)), words);
      values(words + (first - block * kValuesPerBlock) * kWordsPerValue, first, last - first);
    }
  });
}

void check_count(int64_t n, const char* what) {
  if (n < 0) throw std::invalid_argument(std::string(what) + ": negative count " + std::to_string(n));
}

}  // namespace

// The value lambdas capture by value: their stores could alias anything captured by reference, which would
// then be reloaded for every value.

template <class T>
void fill_uniform(const philox::Stream& stream, int64_t n, double low, double high, T* out) {
  check_count(n, "fill_uniform");
  using W = Words<T>;
  for_each_chunk<W::kPerValue>(stream, n, 1, [=](const std::uint32_t* words, int64_t first, int64_t count) {
    for (int64_t i = 0; i < count; ++i) out[first + i] = static_cast<T>(low + (high - low) * W::unit(words + i * W::kPerValue));
  });
}

template <class T>
void fill_normal(const philox::Stream& stream, int64_t n, double mean, double std, T* out) {
  check_count(n, "fill_normal");
  using W = Words<T>;
  constexpr int kPer = W::kPerValue;
  constexpr int64_t kCostPerValue = 16;  // a logarithm, a square root and a sine or cosine per value pair
  // The Box-Muller pair whose words start at w: radius from the first value's words, angle from the second's.
  auto pair = [=](const std::uint32_t* w, double& even, double& odd) {
    constexpr double kTwoPi = 6.283185307179586476925286766559;
    const double radius = std * std::sqrt(-2.0 * std::log(W::open(w)));
    const double angle = kTwoPi * W::unit(w + kPer);
    even = mean + radius * std::cos(angle);
    odd = mean + radius * std::sin(angle);
  };
  for_each_chunk<kPer>(stream, n, kCostPerValue, [=](const std::uint32_t* words, int64_t first, int64_t count) {
    double even, odd;
    int64_t i = 0;
    if (first % 2 == 1) {  // the run starts with the second value of a pair, whose words come one value earlier
      pair(words - kPer, even, odd);
      out[first] = static_cast<T>(odd);
      i = 1;
    }
    for (; i + 1 < count; i += 2) {
      pair(words + i * kPer, even, odd);
      out[first + i] = static_cast<T>(even);
      out[first + i + 1] = static_cast<T>(odd);
    }
    if (i < count) {  // the run ends with the first value of a pair
      pair(words + i * kPer, even, odd);
      out[first + i] = static_cast<T>(even);
    }
  });
}

void fill_bernoulli(const philox::Stream& stream, int64_t n, double p, std::uint8_t* out) {
  check_count(n, "fill_bernoulli");
  if (!(p >= 0.0 && p <= 1.0)) throw std::invalid_argument("fill_bernoulli: p must be in [0, 1], got " + std::to_string(p));
  // 64 bits, so that p = 1 (threshold 2^32) keeps every word.
  const auto threshold = static_cast<std::uint64_t>(p * 0x1p32);
  for_each_chunk<1>(stream, n, 1, [=](const std::uint32_t* words, int64_t first, int64_t count) {
    for (int64_t i = 0; i < count; ++i) out[first + i] = words[i] < threshold ? 1 : 0;
  });
}

void fill_bits(const philox::Stream& stream, int64_t n, std::uint64_t* out) {
  check_count(n, "fill_bits");
  for_each_chunk<2>(stream, n, 1, [=](const std::uint32_t* words, int64_t first, int64_t count) {
    for (int64_t i = 0; i < count; ++i) out[first + i] = (static_cast<std::uint64_t>(words[2 * i]) << 32) | words[2 * i + 1];
  });
}

#define CONVKIT_INSTANTIATE_RANDOM_FILL(T)                                                      \
  template void fill_uniform<T>(const philox::Stream&, int64_t, double, double, T*);            \
  template void fill_normal<T>(const philox::Stream&, int64_t, double, double, T*);
CONVKIT_INSTANTIATE_RANDOM_FILL(float)
CONVKIT_INSTANTIATE_RANDOM_FILL(double)
#undef CONVKIT_INSTANTIATE_RANDOM_FILL

}  // namespace convkit
