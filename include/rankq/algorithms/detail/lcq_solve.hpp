// rankq/algorithms/detail/lcq_solve.hpp — the small dense solver behind every LCQ least-squares step (symmetric positive
// semi-definite systems up to 9 x 9) and the deterministic parallel-for the fit uses. Include rankq/algorithms/lcq.hpp instead.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

RANKQ_NAMESPACE_BEGIN namespace detail {

inline constexpr unsigned kMaxLsUnknowns = 9;  ///< k + 1 for the per-group (S_i, B_i) solve at k = 8

/// Minimizes the quadratic q(x) = xᵀAx − 2xᵀb starting from x (A: n x n symmetric PSD, row-major, n <= 9) and
/// updates x in place: x += δ with δ solving (Â + λI)δ̂ = r̂ where r = b − Ax, and ^ denotes Jacobi scaling to a
/// unit diagonal. Unknowns with no data (A_jj = 0) or that are (numerically) linear combinations of earlier
/// ones (Cholesky pivot below `drop`) keep their value: a rank-revealing, regularized solve for the step, so a
/// rank-deficient system never moves x along directions the data does not determine.
inline void solve_psd_step(const double* A, const double* b, double* x, unsigned n, double ridge = 1e-12,
                           double drop = 1e-10) {
  double L[kMaxLsUnknowns * kMaxLsUnknowns];
  double scale[kMaxLsUnknowns], r[kMaxLsUnknowns], y[kMaxLsUnknowns];
  bool active[kMaxLsUnknowns];
  for (unsigned i = 0; i < n; ++i) {
    active[i] = A[i * n + i] > 0.0 && std::isfinite(A[i * n + i]);
    scale[i] = active[i] ? 1.0 / std::sqrt(A[i * n + i]) : 0.0;
    double ax = 0.0;
    for (unsigned j = 0; j < n; ++j) ax += A[i * n + j] * x[j];
    r[i] = (b[i] - ax) * scale[i];
  }
  // Cholesky of the scaled matrix with dropped (inactive) pivots: column-oriented, skipping inactive unknowns.
  for (unsigned j = 0; j < n; ++j) {
    if (!active[j]) continue;
    double d = A[j * n + j] * scale[j] * scale[j] + ridge;
    for (unsigned p = 0; p < j; ++p)
      if (active[p]) d -= L[j * n + p] * L[j * n + p];
    if (!(d > drop)) {
      active[j] = false;
      continue;
    }
    const double ljj = std::sqrt(d);
    L[j * n + j] = ljj;
    for (unsigned i = j + 1; i < n; ++i) {
      if (!active[i]) continue;
      double v = A[i * n + j] * scale[i] * scale[j];
      for (unsigned p = 0; p < j; ++p)
        if (active[p]) v -= L[i * n + p] * L[j * n + p];
      L[i * n + j] = v / ljj;
    }
  }
  for (unsigned i = 0; i < n; ++i) {  // forward: L y = r
    if (!active[i]) continue;
    double v = r[i];
    for (unsigned p = 0; p < i; ++p)
      if (active[p]) v -= L[i * n + p] * y[p];
    y[i] = v / L[i * n + i];
  }
  for (unsigned ii = n; ii-- > 0;) {  // backward: Lᵀ δ̂ = y (stored in y)
    if (!active[ii]) continue;
    double v = y[ii];
    for (unsigned p = ii + 1; p < n; ++p)
      if (active[p]) v -= L[p * n + ii] * y[p];
    y[ii] = v / L[ii * n + ii];
  }
  for (unsigned i = 0; i < n; ++i)
    if (active[i] && std::isfinite(y[i])) x[i] += y[i] * scale[i];
}

/// Runs body(chunk) for chunk in [0, chunks) on `threads` std::threads (the caller is one of them), handing out
/// chunks through an atomic counter. Bodies write disjoint, chunk-indexed outputs and callers reduce them in
/// chunk order afterwards, so results are identical for any thread count. Rethrows the first exception.
template <typename Body>
void parallel_chunks(std::size_t chunks, std::size_t threads, Body&& body) {
  threads = std::max<std::size_t>(1, std::min(threads, chunks));
  if (threads == 1) {
    for (std::size_t c = 0; c < chunks; ++c) body(c);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (;;) {
      const std::size_t c = next.fetch_add(1, std::memory_order_relaxed);
      if (c >= chunks) return;
      try {
        body(c);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next.store(chunks, std::memory_order_relaxed);
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

inline std::size_t resolve_threads(std::size_t requested) {
  if (requested != 0) return requested;
  return std::max(1u, std::thread::hardware_concurrency());
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
