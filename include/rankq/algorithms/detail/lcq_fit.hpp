// rankq/algorithms/detail/lcq_fit.hpp — the LCQ fitting engine: D-weighted nearest-codeword assignment, per-group least
// squares for (S_i, B_i), one least squares for V, each guarded so the objective never increases; rank extension.
// Include rankq/algorithms/lcq.hpp instead. Math: docs/lcq.md "Fitting".
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "rankq/formats/codebook.hpp"
#include "rankq/algorithms/detail/lcq_solve.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/formats/uniform.hpp"

RANKQ_NAMESPACE_BEGIN namespace detail {

/// The fixed inputs of a fit: weights, channel weights D (as double), shape and the work partition.
struct LcqProblem {
  MatrixView<const float> W;
  std::vector<double> d;  ///< K channel weights D = E[x²] (all 1 when none were given)
  std::size_t N = 0, K = 0, group = 0, groups = 0;
  unsigned bits = 4;
  std::size_t T = 16;  ///< 2^bits codewords
  std::size_t threads = 1;
  std::size_t chunk_groups = 1, chunks = 1;  ///< work unit: a fixed number of groups (depends on the shape only)

  std::size_t group_count() const { return N * groups; }
  std::size_t first_col(std::size_t i) const { return (i % groups) * group; }
  std::size_t length(std::size_t i) const { return std::min(K, first_col(i) + group) - first_col(i); }
  const float* weights(std::size_t i) const { return W.row(i / groups) + first_col(i); }
  std::size_t chunk_begin(std::size_t c) const { return c * chunk_groups; }
  std::size_t chunk_end(std::size_t c) const { return std::min(group_count(), (c + 1) * chunk_groups); }
};

/// The variables of a fit. codes: N x K (unpadded), group_obj: each group's objective in this exact state.
struct LcqState {
  unsigned rank = 1;
  std::vector<float> S, B, V;
  std::vector<std::uint8_t> codes;
  std::vector<double> group_obj;

  const std::uint8_t* codes_of(const LcqProblem& p, std::size_t i) const {
    return codes.data() + (i / p.groups) * p.K + p.first_col(i);
  }
  std::uint8_t* codes_of(const LcqProblem& p, std::size_t i) { return codes.data() + (i / p.groups) * p.K + p.first_col(i); }
};

/// Σ_j d_j (w_j − book[t_j])² in double, element j added to accumulator j mod 8, accumulators summed in a fixed
/// tree: deterministic, and monotone in every element's term. Every objective value the fit records or compares
/// comes from this one out-of-line function, so the non-increase guarantees hold bit for bit.
[[gnu::noinline]] inline double group_objective(const float* w, const double* d, const std::uint8_t* codes,
                                                const double* book, std::size_t len) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t j = 0;
  for (; j + 8 <= len; j += 8)
    for (unsigned l = 0; l < 8; ++l) {
      const double e = static_cast<double>(w[j + l]) - book[codes[j + l]];
      acc[l] += d[j + l] * (e * e);
    }
  for (unsigned l = 0; j < len; ++j, ++l) {
    const double e = static_cast<double>(w[j]) - book[codes[j]];
    acc[l] += d[j] * (e * e);
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/// The group's codebook row (float values widened to double).
inline void make_book(const float* s, float b, const float* V, unsigned rank, std::size_t T, double* book) {
  for (unsigned t = 0; t < T; ++t) book[t] = codeword_value(s, b, V, rank, T, t);
}

/// Brute force: t_j = the first t minimizing (w_j − book[t])² (rounded exactly as group_objective rounds it).
template <unsigned T>
void assign_nearest_exhaustive(const float* w, std::size_t len, const double* book, std::uint8_t* codes) {
  for (std::size_t j = 0; j < len; ++j) {
    const double x = w[j];
    double e = x - book[0];
    double best = e * e;
    unsigned bt = 0;
    for (unsigned t = 1; t < T; ++t) {
      e = x - book[t];
      const double d2 = e * e;
      bt = d2 < best ? t : bt;
      best = d2 < best ? d2 : best;
    }
    codes[j] = static_cast<std::uint8_t>(bt);
  }
}

/// Fast nearest codeword: sort the T codewords, then an element's sorted position is the number of midpoints
/// (a + b)/2 (exact in double for float a, b) below it — branch-free and vectorizable.
template <unsigned T>
void assign_nearest_sorted(const float* w, std::size_t len, const double* book, std::uint8_t* codes) {
  std::uint8_t order[T];
  for (unsigned t = 0; t < T; ++t) {  // insertion sort by (value, t)
    unsigned p = t;
    while (p > 0 && book[order[p - 1]] > book[t]) {
      order[p] = order[p - 1];
      --p;
    }
    order[p] = static_cast<std::uint8_t>(t);
  }
  double mids[T - 1];
  for (unsigned m = 0; m + 1 < T; ++m) mids[m] = 0.5 * (book[order[m]] + book[order[m + 1]]);
  for (std::size_t j = 0; j < len; ++j) {
    const double x = w[j];
    std::int64_t count = 0;
    for (unsigned m = 0; m + 1 < T; ++m) count += x > mids[m] ? 1 : 0;
    codes[j] = static_cast<std::uint8_t>(count);
  }
  for (std::size_t j = 0; j < len; ++j) codes[j] = order[codes[j]];
}

inline void assign_nearest(std::size_t T, bool exhaustive, const float* w, std::size_t len, const double* book,
                           std::uint8_t* codes) {
  if (T == 4) return exhaustive ? assign_nearest_exhaustive<4>(w, len, book, codes) : assign_nearest_sorted<4>(w, len, book, codes);
  if (T == 8) return exhaustive ? assign_nearest_exhaustive<8>(w, len, book, codes) : assign_nearest_sorted<8>(w, len, book, codes);
  exhaustive ? assign_nearest_exhaustive<16>(w, len, book, codes) : assign_nearest_sorted<16>(w, len, book, codes);
}

/// Per-chunk partial normal equations of the V step: for each t, M_t (k x k) and r_t (k).
struct VNormalEquations {
  std::vector<double> M, r;
  void reset(std::size_t T, unsigned k) {
    M.assign(T * k * k, 0.0);
    r.assign(T * k, 0.0);
  }
};

/// One pass over the groups of one chunk: assignment, then the (S_i, B_i) least squares (kept only if the
/// group objective decreases), then this chunk's contribution to the V normal equations.
inline void assign_and_fit_groups(const LcqProblem& p, LcqState& st, std::size_t chunk, VNormalEquations& ne) {
  const unsigned k = st.rank;
  const std::size_t T = p.T;
  const unsigned n_unknowns = k + 1;
  double book[16], m[16], y[16], hist[8 * 16];
  double A[kMaxLsUnknowns * kMaxLsUnknowns], rhs[kMaxLsUnknowns], x[kMaxLsUnknowns];
  float s_new[kMaxCodebookRank];
  ne.reset(T, k);
  for (std::size_t i = p.chunk_begin(chunk); i < p.chunk_end(chunk); ++i) {
    const float* w = p.weights(i);
    const double* d = p.d.data() + p.first_col(i);
    const std::size_t len = p.length(i);
    std::uint8_t* codes = st.codes_of(p, i);
    float* s = st.S.data() + i * k;
    float& b = st.B[i];
    make_book(s, b, st.V.data(), k, T, book);
    assign_nearest(T, false, w, len, book, codes);
    double obj = group_objective(w, d, codes, book, len);
    if (obj > st.group_obj[i]) {  // the sorted search is exact up to a midpoint's rounding; never lose ground
      assign_nearest(T, true, w, len, book, codes);
      obj = group_objective(w, d, codes, book, len);
    }
    // Per-codeword sums m_t = Σ d_j, y_t = Σ d_j w_j over the group; 4 interleaved histograms break the
    // store-to-load chains of runs of equal codes.
    std::fill(hist, hist + 8 * T, 0.0);
    {
      double *h0 = hist, *h1 = hist + 2 * T, *h2 = hist + 4 * T, *h3 = hist + 6 * T;
      std::size_t j = 0;
      for (; j + 4 <= len; j += 4) {
        h0[codes[j]] += d[j], h0[T + codes[j]] += d[j] * static_cast<double>(w[j]);
        h1[codes[j + 1]] += d[j + 1], h1[T + codes[j + 1]] += d[j + 1] * static_cast<double>(w[j + 1]);
        h2[codes[j + 2]] += d[j + 2], h2[T + codes[j + 2]] += d[j + 2] * static_cast<double>(w[j + 2]);
        h3[codes[j + 3]] += d[j + 3], h3[T + codes[j + 3]] += d[j + 3] * static_cast<double>(w[j + 3]);
      }
      for (; j < len; ++j) h0[codes[j]] += d[j], h0[T + codes[j]] += d[j] * static_cast<double>(w[j]);
    }
    for (unsigned t = 0; t < T; ++t) {
      m[t] = (hist[t] + hist[2 * T + t]) + (hist[4 * T + t] + hist[6 * T + t]);
      y[t] = (hist[T + t] + hist[3 * T + t]) + (hist[5 * T + t] + hist[7 * T + t]);
    }
    // Normal equations of min Σ_t Σ_{j: t_j = t} d_j (w_j − a_tᵀx)², x = (S_i, B_i), a_t = (V[0,t] … V[k−1,t], −1).
    std::fill(A, A + n_unknowns * n_unknowns, 0.0);
    std::fill(rhs, rhs + n_unknowns, 0.0);
    for (unsigned t = 0; t < T; ++t) {
      if (m[t] == 0.0) continue;
      double a[kMaxLsUnknowns];
      for (unsigned r = 0; r < k; ++r) a[r] = st.V[r * T + t];
      a[k] = -1.0;
      for (unsigned r = 0; r < n_unknowns; ++r) {
        rhs[r] += y[t] * a[r];
        for (unsigned c = 0; c <= r; ++c) A[r * n_unknowns + c] += m[t] * a[r] * a[c];
      }
    }
    for (unsigned r = 0; r < n_unknowns; ++r)
      for (unsigned c = 0; c < r; ++c) A[c * n_unknowns + r] = A[r * n_unknowns + c];
    for (unsigned r = 0; r < k; ++r) x[r] = s[r];
    x[k] = b;
    solve_psd_step(A, rhs, x, n_unknowns);
    bool finite = true;
    for (unsigned r = 0; r < n_unknowns; ++r) finite = finite && std::isfinite(static_cast<float>(x[r]));
    if (finite) {
      for (unsigned r = 0; r < k; ++r) s_new[r] = static_cast<float>(x[r]);
      const float b_new = static_cast<float>(x[k]);
      double cand[16];
      make_book(s_new, b_new, st.V.data(), k, T, cand);
      const double cand_obj = group_objective(w, d, codes, cand, len);
      if (cand_obj < obj) {
        std::copy(s_new, s_new + k, s);
        b = b_new;
        obj = cand_obj;
      }
    }
    st.group_obj[i] = obj;
    // V step contributions: Σ_i m_{i,t} S_i S_iᵀ and Σ_i (y_{i,t} + m_{i,t} B_i) S_i with the accepted (S_i, B_i).
    for (unsigned t = 0; t < T; ++t) {
      if (m[t] == 0.0) continue;
      double* Mt = ne.M.data() + t * k * k;
      double* rt = ne.r.data() + t * k;
      const double target = y[t] + m[t] * static_cast<double>(b);
      for (unsigned r = 0; r < k; ++r) {
        const double sr = s[r];
        rt[r] += target * sr;
        for (unsigned c = 0; c < k; ++c) Mt[r * k + c] += m[t] * sr * static_cast<double>(s[c]);
      }
    }
  }
}

/// Assignment only (no least squares) for the groups of a chunk: makes every index a nearest codeword.
inline void assign_groups(const LcqProblem& p, LcqState& st, std::size_t chunk) {
  double book[16];
  for (std::size_t i = p.chunk_begin(chunk); i < p.chunk_end(chunk); ++i) {
    const float* w = p.weights(i);
    const double* d = p.d.data() + p.first_col(i);
    std::uint8_t* codes = st.codes_of(p, i);
    make_book(st.S.data() + i * st.rank, st.B[i], st.V.data(), st.rank, p.T, book);
    assign_nearest(p.T, false, w, p.length(i), book, codes);
    double obj = group_objective(w, d, codes, book, p.length(i));
    if (obj > st.group_obj[i]) {
      assign_nearest(p.T, true, w, p.length(i), book, codes);
      obj = group_objective(w, d, codes, book, p.length(i));
    }
    st.group_obj[i] = obj;
  }
}

/// Objective of every group of a chunk under codebook V (codes, S, B as in the state) into out[i].
inline void evaluate_groups(const LcqProblem& p, const LcqState& st, const float* V, std::size_t chunk, double* out) {
  double book[16];
  for (std::size_t i = p.chunk_begin(chunk); i < p.chunk_end(chunk); ++i) {
    make_book(st.S.data() + i * st.rank, st.B[i], V, st.rank, p.T, book);
    out[i] = group_objective(p.weights(i), p.d.data() + p.first_col(i), st.codes_of(p, i), book, p.length(i));
  }
}

/// Σ of per-group objectives in group order (deterministic for any thread count).
inline double ordered_sum(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x;
  return s;
}

/// Recomputes st.group_obj from scratch and returns the total objective.
inline double evaluate_state(const LcqProblem& p, LcqState& st) {
  st.group_obj.assign(p.group_count(), 0.0);
  parallel_chunks(p.chunks, p.threads, [&](std::size_t c) { evaluate_groups(p, st, st.V.data(), c, st.group_obj.data()); });
  return ordered_sum(st.group_obj);
}

/// One alternating iteration; returns the new total objective (never larger than before the call).
inline double lcq_iteration(const LcqProblem& p, LcqState& st, std::vector<VNormalEquations>& partials,
                            std::vector<double>& scratch_obj) {
  const unsigned k = st.rank;
  const std::size_t T = p.T;
  partials.resize(p.chunks);
  parallel_chunks(p.chunks, p.threads, [&](std::size_t c) { assign_and_fit_groups(p, st, c, partials[c]); });
  const double before_v = ordered_sum(st.group_obj);
  // V step: per codeword t, the k x k normal equations summed over all groups (in chunk order).
  VNormalEquations total;
  total.reset(T, k);
  for (const auto& part : partials) {
    for (std::size_t e = 0; e < total.M.size(); ++e) total.M[e] += part.M[e];
    for (std::size_t e = 0; e < total.r.size(); ++e) total.r[e] += part.r[e];
  }
  std::vector<float> V_new(st.V);
  for (unsigned t = 0; t < T; ++t) {
    double v[kMaxCodebookRank];
    for (unsigned r = 0; r < k; ++r) v[r] = st.V[r * T + t];
    solve_psd_step(total.M.data() + t * k * k, total.r.data() + t * k, v, k);
    for (unsigned r = 0; r < k; ++r) {
      const float f = static_cast<float>(v[r]);
      if (std::isfinite(f)) V_new[r * T + t] = f;
    }
  }
  if (V_new == st.V) return before_v;
  scratch_obj.assign(p.group_count(), 0.0);
  parallel_chunks(p.chunks, p.threads, [&](std::size_t c) { evaluate_groups(p, st, V_new.data(), c, scratch_obj.data()); });
  const double after_v = ordered_sum(scratch_obj);
  if (!(after_v < before_v)) return before_v;  // ill-conditioning or rounding: keep the old V
  st.V.swap(V_new);
  st.group_obj.swap(scratch_obj);
  return after_v;
}

/// Runs iterations until the relative improvement drops below tol or max_iterations is reached, then (if any
/// iteration ran) re-assigns every index to its nearest codeword. history gets the objective after each
/// iteration and after the final assignment (its first entry, the starting objective, must already be in it).
inline void lcq_iterate(const LcqProblem& p, LcqState& st, unsigned max_iterations, double tol,
                        std::vector<double>& history) {
  std::vector<VNormalEquations> partials;
  std::vector<double> scratch;
  double f = history.back();
  unsigned it = 0;
  for (; it < max_iterations && f > 0.0; ++it) {
    const double f_new = lcq_iteration(p, st, partials, scratch);
    history.push_back(f_new);
    const bool converged = f - f_new <= tol * f;
    f = f_new;
    if (converged) {
      ++it;
      break;
    }
  }
  if (it == 0) return;
  parallel_chunks(p.chunks, p.threads, [&](std::size_t c) { assign_groups(p, st, c); });
  history.push_back(ordered_sum(st.group_obj));
}

/// Legendre polynomial P_n at x (three-term recurrence).
inline double legendre(unsigned n, double x) {
  double p0 = 1.0, p1 = x;
  if (n == 0) return p0;
  for (unsigned j = 1; j < n; ++j) {
    const double p2 = ((2.0 * j + 1.0) * x * p1 - j * p0) / (j + 1.0);
    p0 = p1;
    p1 = p2;
  }
  return p1;
}

/// Rank k−1 -> k: new V row r = k−1 is the centered Legendre shape P_{r+1}(2t/(T−1) − 1)·(T−1)/2 (non-zero, so
/// the least squares can move it), new S row r is 0, so every codeword — and the objective — is unchanged.
inline void extend_rank(const LcqProblem& p, LcqState& st) {
  const unsigned k_old = st.rank, k = k_old + 1;
  const std::size_t G = p.group_count(), T = p.T;
  std::vector<float> S(G * k, 0.0f);
  for (std::size_t i = 0; i < G; ++i) std::copy(st.S.begin() + i * k_old, st.S.begin() + (i + 1) * k_old, S.begin() + i * k);
  st.V.resize(k * T);
  const double half = 0.5 * static_cast<double>(T - 1);
  for (unsigned t = 0; t < T; ++t)
    st.V[k_old * T + t] = static_cast<float>(legendre(k, static_cast<double>(t) / half - 1.0) * half);
  st.S.swap(S);
  st.rank = k;
}

/// Rank 1 from RTN asymmetric quantization with f32 scales: codes t, S = s, B = z, V = [0, 1, …, 2^b − 1].
inline void init_from_rtn(const LcqProblem& p, std::size_t group_size, LcqState& st) {
  const UniformWeights q = quantize_uniform(p.W, UniformFormat{p.bits, group_size, Symmetry::asymmetric, ScaleType::f32});
  st.rank = 1;
  st.codes.resize(p.N * p.K);
  for (std::size_t n = 0; n < p.N; ++n)
    for (std::size_t c = 0; c < p.K; ++c) st.codes[n * p.K + c] = static_cast<std::uint8_t>(q.code(n, c));
  st.S.assign(q.scales.begin(), q.scales.end());
  st.B.assign(q.offsets.begin(), q.offsets.end());
  st.V.resize(p.T);
  for (unsigned t = 0; t < p.T; ++t) st.V[t] = static_cast<float>(t);
}

/// Packs a state into the storage format (indices as the LSB-first b-bit stream, padded indices 0).
inline CodebookWeights to_codebook_weights(const LcqProblem& p, const LcqState& st, std::size_t group_size) {
  CodebookWeights q = make_codebook_weights(CodebookFormat{p.bits, group_size, st.rank, false}, p.N, p.K);
  for (std::size_t n = 0; n < p.N; ++n)
    for (std::size_t c = 0; c < p.K; ++c) put_bits(q.indices.data() + n * q.row_bytes, c, p.bits, st.codes[n * p.K + c]);
  q.S = st.S;
  q.B = st.B;
  q.V = st.V;
  return q;
}

}  RANKQ_NAMESPACE_END  // namespace rankq::detail
