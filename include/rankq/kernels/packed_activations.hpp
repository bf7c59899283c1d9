// rankq/kernels/packed_activations.hpp — the activation-preparation step ("LHS quant-pack"): quantizes float
// activations and writes, in the same pass over each row, every side term the weights' kernel reads
// (docs/kernels.md §8.1). Ask the weights what they need (activation_terms(w) in w4a8.hpp / codebook_kernel.hpp),
// pack once per forward, and hand the result to w4a8_gemm, lqer_gemm or codebook_gemm, which then compute no
// activation term of their own.
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <string>

#include "rankq/error.hpp"
#include "rankq/formats/activation.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/kernels/kernel_path.hpp"
#include "rankq/detail/kernels/activation_paths.hpp"
#include "rankq/detail/kernels/activation_terms.hpp"

RANKQ_NAMESPACE_BEGIN

class PackedActivations;
void pack_activations(MatrixView<const float> x, const ActivationFormat& f, const ActivationTerms& terms,
                      PackedActivations& out, KernelPath path);

/// Quantized activations plus their side terms, as pack_activations wrote them. Reuse one object across calls:
/// its buffers grow to the largest shape seen and are never shrunk, so packing allocates nothing after that.
class PackedActivations {
 public:
  PackedActivations() = default;
  PackedActivations(const PackedActivations&) = delete;
  PackedActivations& operator=(const PackedActivations&) = delete;
  PackedActivations(PackedActivations&&) = default;
  PackedActivations& operator=(PackedActivations&&) = default;

  /// The int8 codes and scales (the same bits as quantize_activations on any path).
  const QuantizedActivations& quantized() const { return q_; }
  /// The side terms this object holds (all zero before the first successful pack_activations).
  const ActivationTerms& terms() const { return terms_; }
  std::size_t rows() const { return q_.rows; }
  /// Bytes held (for an engine's memory accounting).
  std::size_t capacity_bytes() const { return q_.values.size_bytes() + q_.scales.size_bytes() + buffers_.capacity_bytes(); }

  /// For the kernels (rankq::detail): the side terms, after checking that they are the ones `need` asks for.
  detail::ActivationTermsView terms_for(const ActivationTerms& need, const char* fn) const {
    if (!covers(terms_, need))
      detail::throw_argument(fn, "x", "was packed for " + (terms_.padded ? to_string(terms_) : std::string("nothing")) +
                                          " but these weights need " + to_string(need) +
                                          " (pack with activation_terms(w) of the weights it is multiplied with)");
    return view_;
  }

 private:
  friend void pack_activations(MatrixView<const float>, const ActivationFormat&, const ActivationTerms&,
                               PackedActivations&, KernelPath);
  QuantizedActivations q_;
  ActivationTerms terms_;
  detail::ActivationTermBuffers buffers_;
  detail::ActivationTermsView view_;
};

/// Quantizes x (M x K) with format f on `path` — the same codes and scales as quantize_activations — and writes
/// the side terms `terms` asks for, row by row while each row's codes are in L1. terms.padded (>= K) is the
/// weights' padded K. If it throws (invalid argument, non-finite activation), `out` holds no terms and every
/// kernel refuses it.
inline void pack_activations(MatrixView<const float> x, const ActivationFormat& f, const ActivationTerms& terms,
                             PackedActivations& out, KernelPath path) {
  constexpr const char* fn = "pack_activations";
  out.terms_ = ActivationTerms{};
  out.view_ = detail::ActivationTermsView{};
  detail::check_path(path, fn, "path");
  detail::check_terms(terms, fn, "terms");
  if (terms.padded < x.cols)
    detail::throw_argument(fn, "terms", "has padded = " + std::to_string(terms.padded) + " < K = " + std::to_string(x.cols) +
                                            " of the activations");
  detail::prepare_quantized_activations(x, f, out.q_, terms.padded, fn);
  const detail::ActivationTermsOut o = out.buffers_.out(terms, x.rows);
  detail::pack_activation_rows(x, f, out.q_, o, path, fn);
  out.terms_ = terms;
  out.view_ = detail::view_of(o);
}

/// pack_activations on the best path this CPU supports.
inline void pack_activations(MatrixView<const float> x, const ActivationFormat& f, const ActivationTerms& terms,
                             PackedActivations& out) {
  pack_activations(x, f, terms, out, best_supported_path());
}

namespace detail {
/// The side terms of already quantized activations, into `buffers` (the QuantizedActivations entry points).
inline ActivationTermsView compute_activation_terms(const QuantizedActivations& x, const ActivationTerms& terms,
                                                    ActivationTermBuffers& buffers, KernelPath path, const char* fn) {
  const ActivationTermsOut o = buffers.out(terms, x.rows);
  activation_side_terms(x, o, path, fn);
  return view_of(o);
}
}  // namespace detail

RANKQ_NAMESPACE_END  // namespace rankq
