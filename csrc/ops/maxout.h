// Maxout (Goodfellow et al. 2013): the maximum of k linear pieces.
//
// Shape legend: x and dx are (R, C, k), contiguous, y and dy are (R, C): the k pieces of unit c are the
// consecutive channels [c * k, (c + 1) * k) of a (R, C * k) input.
//
//   forward   y[r, c] = max_j x[r, c, j]
//   backward  dx[r, c, j] = dy[r, c] if j is the argmax of x[r, c, :], else 0
//
// The argmax is the first maximal piece (ties go to the lowest j); a NaN piece wins over any number, the
// first NaN over later ones, so NaN propagates to y and its gradient. The backward recomputes the argmax
// from x. Results are independent of the thread count.
#pragma once
#include <cstdint>

namespace convkit {

// Throws std::invalid_argument unless rows, units >= 0 and pieces >= 1.
void check_maxout(std::int64_t rows, std::int64_t units, std::int64_t pieces);

template <class T>
void maxout_forward(std::int64_t rows, std::int64_t units, std::int64_t pieces, const T* x, T* y);

template <class T>
void maxout_backward(std::int64_t rows, std::int64_t units, std::int64_t pieces, const T* dy, const T* x, T* dx);

}  // namespace convkit
