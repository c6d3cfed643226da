// Size arithmetic that refuses to wrap: every product that sizes an allocation or an index goes through here.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace convkit {

inline std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* what) {
  std::int64_t product;
  if (__builtin_mul_overflow(a, b, &product)) {
    throw std::overflow_error(std::string(what) + ": " + std::to_string(a) + " * " + std::to_string(b) +
                              " overflows int64");
  }
  return product;
}

inline std::int64_t checked_add(std::int64_t a, std::int64_t b, const char* what) {
  std::int64_t sum;
  if (__builtin_add_overflow(a, b, &sum)) {
    throw std::overflow_error(std::string(what) + ": " + std::to_string(a) + " + " + std::to_string(b) +
                              " overflows int64");
  }
  return sum;
}

constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }
constexpr std::int64_t round_up(std::int64_t a, std::int64_t b) { return ceil_div(a, b) * b; }

}  // namespace convkit
