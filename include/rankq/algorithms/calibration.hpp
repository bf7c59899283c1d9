// rankq/algorithms/calibration.hpp — per-channel statistics of one linear layer's inputs, accumulated batch by batch
// (L²QER's max-over-batches mean |x|, E[x²], optionally the Gram matrix XᵀX), mergeable and serializable,
// and the L²QER scale s derived from them. Math: docs/lqer.md §2.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "rankq/error.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/algorithms/detail/lqer_bytes.hpp"

RANKQ_NAMESPACE_BEGIN

/// Statistics of the K input channels of one linear layer over calibration batches.
///
/// A *batch* is one call of add_batch(): an M x K matrix of M tokens (rows). L²QER's statistic is
/// a_i = max over batches of (mean over the batch's tokens of |x_i|) — a max of per-batch means, so it
/// depends on how the calibration tokens are cut into batches. To reproduce the paper (batches of B sequences
/// of T tokens), pass each batch as one B·T x K matrix. E[x²] and the Gram matrix do not depend on batching.
///
/// Accumulators (all double): per channel the running max of per-batch mean |x| (starting at 0), the sum of
/// x² over all tokens, and — only when enabled at construction — the Gram matrix Σ_tokens xᵀx (K x K).
class ActivationStats {
 public:
  /// `channels` = K (> 0). `keep_gram` enables the K x K Gram matrix (8·K² bytes: 128 MiB at K = 4096).
  explicit ActivationStats(std::size_t channels, bool keep_gram = false) : channels_(channels), keep_gram_(keep_gram) {
    detail::require_positive(channels, "ActivationStats", "channels");
    max_mean_abs_.assign(channels, 0.0);
    sum_squares_.assign(channels, 0.0);
    if (keep_gram) gram_.assign(channels * channels, 0.0);
  }

  /// Adds one batch: x is M tokens x K channels. Throws rankq::invalid_argument for an empty view, a column
  /// count != K, or a NaN/Inf value (the statistics are left unchanged).
  void add_batch(MatrixView<const float> x) {
    constexpr const char* fn = "ActivationStats::add_batch";
    detail::check_view(x, fn, "x");
    if (x.cols != channels_)
      detail::throw_argument(fn, "x", "has " + std::to_string(x.cols) + " columns (channels), expected K = " +
                                          std::to_string(channels_));
    detail::require_finite(x.data, x.rows, x.cols, x.ld, fn, "x");
    std::vector<double> abs_sum(channels_, 0.0);
    for (std::size_t m = 0; m < x.rows; ++m) {
      const float* row = x.row(m);
      for (std::size_t k = 0; k < channels_; ++k) {
        const double v = row[k];
        abs_sum[k] += std::fabs(v);
        sum_squares_[k] += v * v;
      }
    }
    const double inv_m = 1.0 / static_cast<double>(x.rows);
    for (std::size_t k = 0; k < channels_; ++k) max_mean_abs_[k] = std::max(max_mean_abs_[k], abs_sum[k] * inv_m);
    if (keep_gram_) add_gram(x);
    ++batches_;
    tokens_ += x.rows;
  }

  /// Folds `other` (same K, same keep_gram) into this, as if its batches had been added here: max of the
  /// per-batch-mean maxes, sums of x² and Gram matrices added (so E[x²] is the token-count-weighted mean),
  /// batch and token counts added. Max is exact; the sums may differ from a single pass in the last bits
  /// (double addition order). Merge partial stats in a fixed order for reproducible results.
  void merge(const ActivationStats& other) {
    constexpr const char* fn = "ActivationStats::merge";
    if (other.channels_ != channels_)
      detail::throw_argument(fn, "other", "has K = " + std::to_string(other.channels_) + " channels, expected " +
                                              std::to_string(channels_));
    if (other.keep_gram_ != keep_gram_)
      detail::throw_argument(fn, "other", other.keep_gram_ ? "keeps a Gram matrix but this does not"
                                                           : "keeps no Gram matrix but this does");
    for (std::size_t k = 0; k < channels_; ++k) {
      max_mean_abs_[k] = std::max(max_mean_abs_[k], other.max_mean_abs_[k]);
      sum_squares_[k] += other.sum_squares_[k];
    }
    for (std::size_t i = 0; i < gram_.size(); ++i) gram_[i] += other.gram_[i];
    batches_ += other.batches_;
    tokens_ += other.tokens_;
  }

  std::size_t channels() const { return channels_; }
  bool has_gram() const { return keep_gram_; }
  std::uint64_t batches() const { return batches_; }
  std::uint64_t tokens() const { return tokens_; }
  bool empty() const { return batches_ == 0; }

  /// Per channel: max over batches of the batch's mean |x| (0 before any batch). L²QER's unclamped s.
  const std::vector<double>& max_mean_abs() const { return max_mean_abs_; }
  /// Per channel: Σ x² over all tokens.
  const std::vector<double>& sum_squares() const { return sum_squares_; }
  /// Per channel E[x²] = Σ x² / tokens. Throws if no batch was added.
  std::vector<double> mean_square() const {
    require_batches("ActivationStats::mean_square");
    std::vector<double> out(channels_);
    for (std::size_t k = 0; k < channels_; ++k) out[k] = sum_squares_[k] / static_cast<double>(tokens_);
    return out;
  }
  /// Gram matrix Σ_tokens xᵀx, K x K row-major (symmetric). Throws if not enabled at construction.
  const std::vector<double>& gram() const {
    if (!keep_gram_)
      detail::throw_argument("ActivationStats::gram", "this", "keeps no Gram matrix: construct with keep_gram = true");
    return gram_;
  }

  /// Little-endian bytes (layout in docs/lqer.md §2.3): magic "RQAS", version, K, flags, batches, tokens,
  /// then K max-mean-abs, K sums of squares and (flag bit 0) K² Gram entries, all IEEE binary64.
  std::vector<std::uint8_t> serialize() const {
    std::vector<std::uint8_t> out;
    out.reserve(kHeaderBytes + 8 * (2 * channels_ + gram_.size()));
    for (std::uint8_t c : kMagic) out.push_back(c);
    detail::lqer_bytes::put_u32(out, kVersion);
    detail::lqer_bytes::put_u32(out, keep_gram_ ? 1u : 0u);
    detail::lqer_bytes::put_u64(out, channels_);
    detail::lqer_bytes::put_u64(out, batches_);
    detail::lqer_bytes::put_u64(out, tokens_);
    for (double v : max_mean_abs_) detail::lqer_bytes::put_f64(out, v);
    for (double v : sum_squares_) detail::lqer_bytes::put_f64(out, v);
    for (double v : gram_) detail::lqer_bytes::put_f64(out, v);
    return out;
  }

  /// Inverse of serialize(). Throws rankq::format_error for wrong magic/version/flags, a size that does not
  /// match the header, K = 0, inconsistent counts or non-finite/negative statistics.
  static ActivationStats deserialize(const std::uint8_t* data, std::size_t size) {
    auto fail = [](const std::string& why) -> void { throw format_error("rankq::ActivationStats::deserialize: " + why); };
    if (data == nullptr && size != 0) fail("null data with a non-zero size");
    if (size < kHeaderBytes) fail("truncated header (" + std::to_string(size) + " bytes)");
    if (!std::equal(kMagic, kMagic + 4, data)) fail("wrong magic (expected \"RQAS\")");
    detail::lqer_bytes::Reader r{data, size, 4};
    const std::uint32_t version = r.u32(), flags = r.u32();
    if (version != kVersion) fail("unsupported version " + std::to_string(version));
    if (flags > 1u) fail("unknown flag bits " + std::to_string(flags));
    const std::uint64_t K = r.u64(), batches = r.u64(), tokens = r.u64();
    if (K == 0) fail("K = 0 channels");
    const std::uint64_t limit = (static_cast<std::uint64_t>(size) - kHeaderBytes) / 8;  // doubles that fit
    if (K > limit / 2 || (flags && K > 0xFFFFFFFFull) || (flags && K * K > limit - 2 * K))
      fail("size " + std::to_string(size) + " is too small for K = " + std::to_string(K));
    const std::uint64_t count = 2 * K + (flags ? K * K : 0);
    if (size != kHeaderBytes + 8 * count)
      fail("size " + std::to_string(size) + " does not match K = " + std::to_string(K) + " (expected " +
           std::to_string(kHeaderBytes + 8 * count) + ")");
    if ((batches == 0) != (tokens == 0) || tokens < batches)
      fail("inconsistent counts: " + std::to_string(batches) + " batches, " + std::to_string(tokens) + " tokens");
    ActivationStats s(static_cast<std::size_t>(K), flags != 0);
    s.batches_ = batches;
    s.tokens_ = tokens;
    for (auto& v : s.max_mean_abs_) v = r.f64();
    for (auto& v : s.sum_squares_) v = r.f64();
    for (auto& v : s.gram_) v = r.f64();
    for (std::size_t k = 0; k < s.channels_; ++k)
      if (!(s.max_mean_abs_[k] >= 0.0) || !(s.sum_squares_[k] >= 0.0) || !std::isfinite(s.max_mean_abs_[k]) ||
          !std::isfinite(s.sum_squares_[k]))
        fail("channel " + std::to_string(k) + " has a negative or non-finite statistic");
    if (batches == 0)
      for (std::size_t k = 0; k < s.channels_; ++k)
        if (s.max_mean_abs_[k] != 0.0 || s.sum_squares_[k] != 0.0) fail("statistics are non-zero with 0 batches");
    for (double v : s.gram_)
      if (!std::isfinite(v)) fail("the Gram matrix has a non-finite entry");
    return s;
  }
  static ActivationStats deserialize(const std::vector<std::uint8_t>& bytes) {
    return deserialize(bytes.data(), bytes.size());
  }

 private:
  static constexpr std::uint8_t kMagic[4] = {'R', 'Q', 'A', 'S'};
  static constexpr std::uint32_t kVersion = 1;
  static constexpr std::size_t kHeaderBytes = 4 + 4 + 4 + 8 + 8 + 8;

  void require_batches(const char* fn) const {
    if (batches_ == 0) detail::throw_argument(fn, "stats", "is empty: no calibration batch was added");
  }

  // Gram += xᵀx in double, 256 tokens at a time (Eigen's blocked symmetric rank update of the upper
  // triangle, then mirrored so the stored matrix is full and symmetric).
  void add_gram(MatrixView<const float> x) {
    const Eigen::Index K = static_cast<Eigen::Index>(channels_);
    Eigen::Map<Eigen::MatrixXd> g(gram_.data(), K, K);
    constexpr std::size_t kPanel = 256;
    Eigen::MatrixXd panel;  // K x rows: column r = token m0 + r
    for (std::size_t m0 = 0; m0 < x.rows; m0 += kPanel) {
      const std::size_t rows = std::min(kPanel, x.rows - m0);
      panel.resize(K, static_cast<Eigen::Index>(rows));
      for (std::size_t r = 0; r < rows; ++r)
        for (Eigen::Index k = 0; k < K; ++k) panel(k, static_cast<Eigen::Index>(r)) = x(m0 + r, static_cast<std::size_t>(k));
      g.selfadjointView<Eigen::Upper>().rankUpdate(panel);
    }
    for (Eigen::Index c = 0; c < K; ++c)
      for (Eigen::Index r = c + 1; r < K; ++r) g(r, c) = g(c, r);
  }

  std::size_t channels_;
  bool keep_gram_;
  std::uint64_t batches_ = 0, tokens_ = 0;
  std::vector<double> max_mean_abs_, sum_squares_, gram_;
};

/// L²QER's input-channel scale (papers.md §1.2): s_i = max(a_i, 1e-4) with a_i = stats.max_mean_abs()[i],
/// then s ← s / sqrt(min(s)·max(s)) so that min(s)·max(s) = 1. Throws if `stats` has no batch.
inline std::vector<float> l2qer_scale(const ActivationStats& stats) {
  if (stats.empty()) detail::throw_argument("l2qer_scale", "stats", "is empty: no calibration batch was added");
  std::vector<double> s(stats.max_mean_abs());
  for (double& v : s) v = std::max(v, 1e-4);
  const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
  const double norm = std::sqrt(*lo * *hi);
  std::vector<float> out(s.size());
  for (std::size_t k = 0; k < s.size(); ++k) out[k] = static_cast<float>(s[k] / norm);
  return out;
}

RANKQ_NAMESPACE_END  // namespace rankq
