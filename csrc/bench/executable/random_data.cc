#include <random>

#include "bench/executable/suite.h"

namespace convkit::bench {

std::vector<float> random_floats(std::int64_t count, unsigned seed) {
  std::vector<float> values(static_cast<std::size_t>(count));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (float& v : values) v = uniform(rng);
  return values;
}

}  // namespace convkit::bench
