// Philox4x32-10, the counter-based random number generator of Salmon, Moraes, Dror and Shaw, "Parallel
// random numbers: as easy as 1, 2, 3" (SC 2011), written from the paper's description: a keyed bijection
// of a 128-bit counter, so the random bits of any position are computed directly, in any order, by any
// thread. Pure functions, no state.
//
// convkit's streams: a generator's seed is the 64-bit key; a call draws its values from consecutive
// 128-bit blocks starting at `first_block`. Word j of a call (j = 0, 1, ...) is word j % 4 of the block
// with counter (first_block + j / 4) as (low 32 bits, high 32 bits, 0, 0). A value that needs 64 bits (a
// float64, a uint64) takes two consecutive words; every other value takes one.
#pragma once
#include <array>
#include <cstdint>

#include "core/host_device.h"

namespace convkit::philox {

using Block = std::array<std::uint32_t, 4>;
using Key = std::array<std::uint32_t, 2>;

// The paper's constants: round multipliers, and the Weyl sequence increments of the key schedule (the
// golden ratio and sqrt(3) - 1 as 32-bit fractions).
constexpr std::uint32_t kMultiplier0 = 0xD2511F53u, kMultiplier1 = 0xCD9E8D57u;
constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
constexpr int kRounds = 10;

// The 10-round bijection on `kLanes` counters at once, in structure-of-arrays form (c[word][lane]), so that
// the compiler can interleave the lanes' rounds, which are chains of dependent multiplies.
// Each round: (c0, c1, c2, c3) -> (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2), hi(M0 c0) ^ c3 ^ k1, lo(M0 c0)), the
// products 64 bits wide; the key advances by the Weyl increments between rounds.
template <int kLanes>
CONVKIT_HOST_DEVICE inline void philox4x32_10_lanes(std::uint32_t (&c)[4][kLanes], const Key& key) {
  std::uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < kRounds; ++r) {
    if (r > 0) k0 += kWeyl0, k1 += kWeyl1;
    for (int j = 0; j < kLanes; ++j) {
      const std::uint64_t p0 = static_cast<std::uint64_t>(kMultiplier0) * c[0][j];
      const std::uint64_t p1 = static_cast<std::uint64_t>(kMultiplier1) * c[2][j];
      const std::uint32_t next0 = static_cast<std::uint32_t>(p1 >> 32) ^ c[1][j] ^ k0;
      const std::uint32_t next2 = static_cast<std::uint32_t>(p0 >> 32) ^ c[3][j] ^ k1;
      c[1][j] = static_cast<std::uint32_t>(p1);
      c[3][j] = static_cast<std::uint32_t>(p0);
      c[0][j] = next0;
      c[2][j] = next2;
    }
  }
}

inline Block philox4x32_10(const Block& counter, const Key& key) {
  std::uint32_t c[4][1] = {{counter[0]}, {counter[1]}, {counter[2]}, {counter[3]}};
  philox4x32_10_lanes<1>(c, key);
  return {c[0][0], c[1][0], c[2][0], c[3][0]};
}

// Where one call's values come from (see the top of this file).
struct Stream {
  std::uint64_t seed;
  std::uint64_t first_block;

  // The words of blocks [index, index + count) of the call (index counted from first_block; the counter
  // wraps modulo 2^64), block after block in words[0, 4 * count). count must be a multiple of kLanes.
  template <int kLanes>
  void words(std::uint64_t index, int count, std::uint32_t* words) const {
    const Key key = {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
    for (int b = 0; b < count; b += kLanes) {
      std::uint32_t c[4][kLanes];
      for (int j = 0; j < kLanes; ++j) {
        const std::uint64_t counter = first_block + index + static_cast<std::uint64_t>(b + j);
        c[0][j] = static_cast<std::uint32_t>(counter);
        c[1][j] = static_cast<std::uint32_t>(counter >> 32);
        c[2][j] = c[3][j] = 0;
      }
      philox4x32_10_lanes<kLanes>(c, key);
      for (int j = 0; j < kLanes; ++j) {
        for (int w = 0; w < 4; ++w) words[4 * (b + j) + w] = c[w][j];
      }
    }
  }
};

// Unit-interval numbers from random words, exactly representable in their type.
// [0, 1): the 2^24 multiples of 2^-24, equally likely, from the top 24 bits of a word.
inline float unit_float(std::uint32_t w) { return static_cast<float>(w >> 8) * 0x1p-24f; }
// [0, 1): the 2^53 multiples of 2^-53, equally likely, from the top 53 bits of two words (w0 the high half).
inline double unit_double(std::uint32_t w0, std::uint32_t w1) {
  return static_cast<double>(((static_cast<std::uint64_t>(w0) << 32) | w1) >> 11) * 0x1p-53;
}
// (0, 1), never 0: the midpoints of a 2^-32 grid (one word) or of the 2^-53 grid (two words), for
// logarithms (Box-Muller).
inline double open_unit(std::uint32_t w) { return (static_cast<double>(w) + 0.5) * 0x1p-32; }
inline double open_unit(std::uint32_t w0, std::uint32_t w1) {
  return (static_cast<double>(((static_cast<std::uint64_t>(w0) << 32) | w1) >> 11) + 0.5) * 0x1p-53;
}

}  // namespace convkit::philox
