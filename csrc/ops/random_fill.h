// Random arrays drawn from a Philox stream (core/philox.h). Value i of a call depends only on the stream
// (seed, first block) and i, so any thread count and any split of the work give the same values.
//
// Words per value (a word is 32 random bits; a block holds 4):
//   float32 uniform/normal, bernoulli:  1 word  -> 4 values per block
//   float64 uniform/normal, bits:       2 words -> 2 values per block
// A call of n values uses ceil(n * words / 4) blocks; the caller's generator advances by that many.
//
//   uniform    out[i] = low + (high - low) * u_i, u_i in [0, 1) (philox::unit_float / unit_double)
//   normal     values 2k and 2k+1 are one Box-Muller pair: r = sqrt(-2 ln u), u in (0, 1) from the first
//              value's words, angle = 2 pi v, v in [0, 1) from the second's;
//              out[2k] = mean + std * r cos(angle), out[2k+1] = mean + std * r sin(angle)
//   bernoulli  out[i] = 1 if word_i < floor(p * 2^32), else 0: P(1) = p to within 2^-32
//   bits       out[i] = word_2i * 2^32 + word_2i+1, uniform over all 64-bit integers
//
// uniform and normal compute in double and round once to T.
#pragma once
#include <cstdint>

#include "core/philox.h"

namespace convkit {

template <class T>
void fill_uniform(const philox::Stream& stream, std::int64_t n, double low, double high, T* out);

template <class T>
void fill_normal(const philox::Stream& stream, std::int64_t n, double mean, double std, T* out);

// p in [0, 1]; throws std::invalid_argument otherwise.
void fill_bernoulli(const philox::Stream& stream, std::int64_t n, double p, std::uint8_t* out);

void fill_bits(const philox::Stream& stream, std::int64_t n, std::uint64_t* out);

}  // namespace convkit
