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

namespace convkit::philox {

using Block = std::array<std::uint32_t, 4>;
using Key = std::array<std::uint32_t, 2>;

// The paper's constants: round multipliers, and the Weyl sequence increments of the key schedule (the
// golden ratio and sqrt(3) - 1 as 32-bit fractions).
constexpr std::uint32_t kMultiplier0 = 0xD2511F53u, kMultiplier1 = 0xCD9E8D57u;
constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
constexpr int kRounds = 10;

inline Block round(const Block& c, const Key& k) {
  const std::uint64_t p0 = static_cast<std::uint64_t>(kMultiplier0) * c[0];
  const std::uint64_t p1 = static_cast<std::uint64_t>(kMultiplier1) * c[2];
  const auto hi = [](std::uint64_t p) { return static_cast<std::uint32_t>(p >> 32); };
  const auto lo = [](std::uint64_t p) { return static_cast<std::uint32_t>(p); };
  return {hi(p1) ^ c[1] ^ k[0], lo(p1), hi(p0) ^ c[3] ^ k[1], lo(p0)};
}

// The 10-round bijection; the key advances by the Weyl increments between rounds.
inline Block philox4x32_10(Block counter, Key key) {
  for (int r = 0; r < kRounds; ++r) {
    if (r > 0) key = {key[0] + kWeyl0, key[1] + kWeyl1};
    counter = round(counter, key);
  }
  return counter;
}

// Where one call's values come from (see the top of this file).
struct Stream {
  std::uint64_t seed;
  std::uint64_t first_block;

  // Block `index` of the call (index counted from first_block; the counter wraps modulo 2^64).
  Block block(std::uint64_t index) const {
    const std::uint64_t counter = first_block + index;
    return philox4x32_10({static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32), 0, 0},
                         {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
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
