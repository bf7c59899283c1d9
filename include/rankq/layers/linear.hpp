// rankq/layers/linear.hpp — prepared linear layers for engines: pack once at load time, then forward(x, y, context)
// many times with no heap allocation (docs/kernels.md §8).
//
//   rankq::Linear layer = rankq::Linear::from_uniform(quantized_weights);   // or from_mxint / _lqer / _codebook
//   rankq::ThreadPool pool(2);
//   rankq::ParallelFor hook = pool.hook();
//   rankq::Context ctx(&hook);                                               // one per calling thread
//   layer.forward(x, y, ctx);                                                // y (M x N) = x (M x K) · Ŵᵀ + bias
#pragma once

#include "rankq/detail/abi.hpp"

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rankq/error.hpp"
#include "rankq/formats/activation.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/formats/mxint.hpp"
#include "rankq/formats/uniform.hpp"
#include "rankq/kernels/codebook_kernel.hpp"
#include "rankq/kernels/kernel_path.hpp"
#include "rankq/kernels/lowrank_kernel.hpp"
#include "rankq/kernels/packed_activations.hpp"
#include "rankq/kernels/reference.hpp"
#include "rankq/kernels/threading.hpp"
#include "rankq/kernels/w4a8.hpp"
#include "rankq/kernels/w8a8_kernel.hpp"
#include "rankq/kernels/workspace.hpp"
#include "rankq/layers/detail/packed_checks.hpp"

RANKQ_NAMESPACE_BEGIN

/// What a calling thread brings to Linear::forward: the thread-pool hook (null = run on the calling thread) and
/// its reusable workspace. One Context per thread that calls layers concurrently; reuse it for every layer.
class Context {
 public:
  explicit Context(const ParallelFor* parallel = nullptr) : parallel_(parallel) {}
  const ParallelFor* parallel() const { return parallel_; }
  void set_parallel(const ParallelFor* parallel) { parallel_ = parallel; }
  Workspace& workspace() { return workspace_; }

 private:
  const ParallelFor* parallel_;
  Workspace workspace_;
};

/// The kernel family a Linear runs.
enum class LinearKind : std::uint8_t {
  w4a8 = 0,      ///< uniform or MXINT weights of 2-4 bits, packed W4A8 kernels
  lqer = 1,      ///< w4a8 plus the fused 8-bit low-rank correction (LQER / L²QER)
  codebook = 2,  ///< LCQ rank-k codebook weights, codebook kernels
  w8a8 = 3,      ///< uniform or MXINT 8-bit weights, packed W8A8 kernels
};

inline const char* to_string(LinearKind k) {
  switch (k) {
    case LinearKind::w4a8: return "w4a8";
    case LinearKind::lqer: return "lqer";
    case LinearKind::codebook: return "codebook";
    case LinearKind::w8a8: return "w8a8";
  }
  return "unknown";
}

/// Options of a prepared layer; the defaults are what an engine wants.
struct LinearOptions {
  ActivationFormat activation{};           ///< how forward quantizes x (int8 per token by default)
  KernelPath path = best_supported_path();  ///< run-time dispatch; set a path explicitly to opt out
  std::vector<float> bias{};               ///< empty or N floats
};

/// Keeps alive the memory a Linear views (from_packed* with borrowed buffers), e.g. a shared_ptr<io::MappedFile>.
using KeepAlive = std::shared_ptr<const void>;

/// A prepared linear layer: owns its packed weights (and factors or codebooks) or views them in caller memory
/// (from_packed*: zero copy), its activation format, kernel path and bias, all validated once at construction.
/// forward is const and thread-safe for distinct Contexts.
class Linear {
 public:
  /// From weights already in the kernels' layout (docs/formats.md §5-7), owned or borrowed
  /// (AlignedBuffer::borrow: e.g. a mapped rankq quantized model file, docs/io.md). A borrowed layer copies
  /// nothing: `keep_alive` is held for the layer's lifetime and must keep the borrowed memory valid and unchanged
  /// (without it, the caller must). Every header field, the data size and every scale are checked (the bytes may
  /// come from a file); a bad one is rankq::invalid_argument naming `w`/`c`.
  static Linear from_packed(PackedW4 w, LinearOptions o = {}, KeepAlive keep_alive = {}) {
    constexpr const char* fn = "Linear::from_packed";
    detail::check_packed(w, fn, "w");
    Linear l(LinearKind::w4a8, w.rows, w.cols, std::move(o), fn);
    l.w4_ = std::move(w);
    l.keep_alive_ = std::move(keep_alive);
    return l;
  }
  static Linear from_packed_lqer(PackedW4 w, PackedLowRank c, LinearOptions o = {}, KeepAlive keep_alive = {}) {
    constexpr const char* fn = "Linear::from_packed_lqer";
    detail::check_packed(w, fn, "w");
    detail::check_packed(c, w.rows, w.cols, fn, "c");
    Linear l(LinearKind::lqer, w.rows, w.cols, std::move(o), fn);
    l.w4_ = std::move(w);
    l.lowrank_ = std::move(c);
    l.keep_alive_ = std::move(keep_alive);
    return l;
  }
  static Linear from_packed_codebook(PackedCodebook w, LinearOptions o = {}, KeepAlive keep_alive = {}) {
    constexpr const char* fn = "Linear::from_packed_codebook";
    detail::check_packed(w, fn, "w");
    Linear l(LinearKind::codebook, w.rows, w.cols, std::move(o), fn);
    l.codebook_ = std::move(w);
    l.keep_alive_ = std::move(keep_alive);
    return l;
  }

  static Linear from_packed_w8(PackedW8 w, LinearOptions o = {}, KeepAlive keep_alive = {}) {
    constexpr const char* fn = "Linear::from_packed_w8";
    detail::check_packed(w, fn, "w");
    Linear l(LinearKind::w8a8, w.rows, w.cols, std::move(o), fn);
    l.w8_ = std::move(w);
    l.keep_alive_ = std::move(keep_alive);
    return l;
  }

  /// Uniform weights of 2-4 bits (W4A8 kernels) or 8 bits (W8A8 kernels): any group size, symmetric or
  /// asymmetric, f16 or f32 scales.
  static Linear from_uniform(const UniformWeights& w, LinearOptions o = {}) {
    return from_uniform_as(w, std::move(o), "Linear::from_uniform");
  }
  /// MXINT weights of 2-4 or 8 bits: run as their exact uniform form (to_uniform).
  static Linear from_mxint(const MxTensor& w, LinearOptions o = {}) {
    constexpr const char* fn = "Linear::from_mxint";
    detail::check_uniform_mx_bits(w.format.bits, fn, "w.format.bits");
    return from_uniform_as(to_uniform(w), std::move(o), fn);
  }
  /// LQER / L²QER: uniform (or MXINT via to_uniform) weights of 2-4 bits plus their 8-bit correction factors.
  static Linear from_lqer(const UniformWeights& w, const LowRankCorrection& c, LinearOptions o = {}) {
    constexpr const char* fn = "Linear::from_lqer";
    check_w4(w, fn, "w");
    if (c.in_features != w.cols || c.out_features != w.rows)
      detail::throw_argument(fn, "c", "is a correction for " + std::to_string(c.out_features) + "x" +
                                          std::to_string(c.in_features) + " weights but w is " + std::to_string(w.rows) +
                                          "x" + std::to_string(w.cols));
    Linear l(LinearKind::lqer, w.rows, w.cols, std::move(o), fn);
    l.w4_ = pack_w4(w);
    l.lowrank_ = pack_lowrank(c);
    return l;
  }
  /// LCQ codebook weights (2-4 bits, rank 1-4).
  static Linear from_codebook(const CodebookWeights& w, LinearOptions o = {}) {
    constexpr const char* fn = "Linear::from_codebook";
    Linear l(LinearKind::codebook, w.rows, w.cols, std::move(o), fn);
    l.codebook_ = pack_codebook(w);
    return l;
  }

  LinearKind kind() const { return kind_; }
  std::size_t in_features() const { return in_; }    ///< K
  std::size_t out_features() const { return out_; }  ///< N
  KernelPath path() const { return opt_.path; }
  const ActivationFormat& activation_format() const { return opt_.activation; }
  const std::vector<float>& bias() const { return opt_.bias; }  ///< empty or N values
  /// Bytes of packed data this layer uses (weights, factors, codebook tables, bias), owned or viewed.
  std::size_t size_bytes() const {
    return w4_.data.size() + w8_.data.size() + lowrank_.size_bytes() + codebook_.size_bytes() +
           opt_.bias.size() * sizeof(float);
  }
  /// The part of size_bytes() this layer allocated itself: size_bytes() minus the borrowed buffers it views.
  std::size_t owned_bytes() const {
    const auto owned = [](const AlignedBuffer<std::uint8_t>& b) { return b.owns_data() ? b.size() : 0; };
    return owned(w4_.data) + owned(w8_.data) + owned(lowrank_.a_t.data) + owned(lowrank_.b_t.data) + owned(codebook_.data) +
           codebook_.lut.size() + opt_.bias.size() * sizeof(float);
  }
  /// The packed data forward runs on (empty structs for the kinds that do not use them): what a model file stores.
  const PackedW4& packed_w4() const { return w4_; }
  const PackedW8& packed_w8() const { return w8_; }
  const PackedLowRank& packed_lowrank() const { return lowrank_; }
  const PackedCodebook& packed_codebook() const { return codebook_; }
  /// The side terms forward packs with the activations (pack_activations), for an engine that packs them itself.
  ActivationTerms activation_terms() const {
    switch (kind_) {
      case LinearKind::codebook: return rankq::activation_terms(codebook_);
      case LinearKind::w8a8: return rankq::activation_terms(w8_);
      default: return rankq::activation_terms(w4_);
    }
  }

  /// y (M x N, row stride y.ld) = Q(x) (M x K) · Ŵᵀ (+ correction) (+ bias): the same results as the layer's
  /// kernel function (w4a8_linear / lqer_linear / codebook_gemm / w8a8_linear) on path(). After the first call with a given M
  /// on a Context, later calls allocate nothing.
  void forward(MatrixView<const float> x, MatrixView<float> y, Context& ctx) const {
    constexpr const char* fn = "Linear::forward";
    detail::check_view(x, fn, "x");
    if (x.cols != in_)
      detail::throw_argument(fn, "x", "has K = " + std::to_string(x.cols) + " columns but the layer takes " + std::to_string(in_));
    if (x.rows == 0) detail::throw_argument(fn, "x", "has no rows");
    detail::check_view(y, fn, "y");
    if (y.rows != x.rows || y.cols != out_)
      detail::throw_argument(fn, "y", "has shape " + std::to_string(y.rows) + "x" + std::to_string(y.cols) +
                                          ", expected " + std::to_string(x.rows) + "x" + std::to_string(out_));
    Workspace& ws = ctx.workspace();
    W4A8Options o;
    o.path = opt_.path;
    o.parallel = ctx.parallel();
    o.bias = opt_.bias.empty() ? nullptr : opt_.bias.data();
    o.workspace = &ws;
    // One activation-preparation step: codes, scales and every side term the kernel reads, in one pass per row.
    PackedActivations& xq = ws.activations();
    pack_activations(x, opt_.activation, activation_terms(), xq, opt_.path);
    switch (kind_) {
      case LinearKind::w4a8: return w4a8_gemm(xq, w4_, y, o);
      case LinearKind::lqer: return lqer_gemm(xq, w4_, lowrank_, y, o);
      case LinearKind::codebook: return codebook_gemm(xq, codebook_, y, o);
      case LinearKind::w8a8: return w8a8_gemm(xq, w8_, y, o);
    }
  }

 private:
  Linear(LinearKind kind, std::size_t out, std::size_t in, LinearOptions o, const char* fn)
      : kind_(kind), out_(out), in_(in), opt_(std::move(o)) {
    if (out == 0 || in == 0) detail::throw_argument(fn, "w", "is empty");
    detail::check_format(opt_.activation, fn);
    if (!path_supported(opt_.path))
      detail::throw_argument(fn, "o.path", std::string("= ") + to_string(opt_.path) +
                                               ": not compiled into this binary or not supported by this CPU");
    if (!opt_.bias.empty() && opt_.bias.size() != out)
      detail::throw_argument(fn, "o.bias", "has " + std::to_string(opt_.bias.size()) + " values, expected N = " +
                                               std::to_string(out) + " (or none)");
    for (float b : opt_.bias)
      if (!std::isfinite(b)) detail::throw_argument(fn, "o.bias", "has a non-finite value");
  }
  static void check_w4(const UniformWeights& w, const char* fn, const char* name) {
    if (w.format.bits < 2 || w.format.bits > 4)
      detail::throw_argument(fn, name, "has " + std::to_string(w.format.bits) +
                                           "-bit codes: the fused LQER kernels take 2-4-bit weights (8-bit weights "
                                           "have a kernel without the correction: from_uniform)");
  }
  static Linear from_uniform_as(const UniformWeights& w, LinearOptions o, const char* fn) {
    if (w.format.bits == 8) {
      Linear l(LinearKind::w8a8, w.rows, w.cols, std::move(o), fn);
      l.w8_ = pack_w8(w);
      return l;
    }
    if (w.format.bits < 2 || w.format.bits > 4)
      detail::throw_argument(fn, "w", "has " + std::to_string(w.format.bits) + "-bit codes: the kernels take 2-4 or 8 bits");
    Linear l(LinearKind::w4a8, w.rows, w.cols, std::move(o), fn);
    l.w4_ = pack_w4(w);
    return l;
  }

  LinearKind kind_;
  std::size_t out_, in_;
  LinearOptions opt_;
  PackedW4 w4_;
  PackedW8 w8_;
  PackedLowRank lowrank_;
  PackedCodebook codebook_;
  KeepAlive keep_alive_;
};

RANKQ_NAMESPACE_END  // namespace rankq
