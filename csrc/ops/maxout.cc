// Maxout drivers (definition in maxout.h): (row, unit) pairs split in contiguous shares over the threads.
#include "ops/maxout.h"

#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/checked_math.h"
#include "ops/parallel_shares.h"

namespace convkit {
namespace {

using std::int64_t;

// The index of the first maximal value of v[0, pieces), a NaN counting as the largest.
template <class T>
int64_t first_argmax(const T* v, int64_t pieces) {
  int64_t best = 0;
  for (int64_t j = 1; j < pieces; ++j) {
    if (v[best] != v[best]) break;  // the first NaN wins
    if (v[j] > v[best] || v[j] != v[j]) best = j;
  }
  return best;
}

}  // namespace

void check_maxout(int64_t rows, int64_t units, int64_t pieces) {
  if (rows < 0 || units < 0 || pieces < 1) {
    throw std::invalid_argument("maxout: bad sizes (rows " + std::to_string(rows) + ", units " +
                                std::to_string(units) + ", pieces " + std::to_string(pieces) + ")");
  }
  checked_mul(checked_mul(rows, units, "maxout size"), pieces, "maxout size");
}

template <class T>
void maxout_forward(int64_t rows, int64_t units, int64_t pieces, const T* x, T* y) {
  check_maxout(rows, units, pieces);
  for_each_share(rows * units, pieces, [&](int64_t begin, int64_t end) {
    for (int64_t u = begin; u < end; ++u) y[u] = x[u * pieces + first_argmax(x + u * pieces, pieces)];
  });
}

template <class T>
void maxout_backward(int64_t rows, int64_t units, int64_t pieces, const T* dy, const T* x, T* dx) {
  check_maxout(rows, units, pieces);
  for_each_share(rows * units, pieces, [&](int64_t begin, int64_t end) {
    for (int64_t u = begin; u < end; ++u) {
      const int64_t best = first_argmax(x + u * pieces, pieces);
      for (int64_t j = 0; j < pieces; ++j) dx[u * pieces + j] = j == best ? dy[u] : T(0);
    }
  });
}

#define CONVKIT_INSTANTIATE_MAXOUT(T)                                                   \
  template void maxout_forward<T>(int64_t, int64_t, int64_t, const T*, T*);             \
  template void maxout_backward<T>(int64_t, int64_t, int64_t, const T*, const T*, T*);
CONVKIT_INSTANTIATE_MAXOUT(float)
CONVKIT_INSTANTIATE_MAXOUT(double)
#undef CONVKIT_INSTANTIATE_MAXOUT

}  // namespace convkit
