// rankq/kernels/lowrank_kernel.hpp — the fused L²QER inference path: y = x_q·W_qᵀ + (Q(x_q·A))·B (+ bias) with the
// low-rank products in int8 x int8 -> int32 on every kernel path, fused per 16-row tile with the W4A8 GEMV/GEMM.
// Semantics (exactly what lqer_reference_matmul computes with requantize_output = false), packed layout and
// cost: docs/lqer.md §5–§6.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "rankq/formats/activation.hpp"
#include "rankq/error.hpp"
#include "rankq/kernels/kernel_path.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/kernels/threading.hpp"
#include "rankq/formats/uniform.hpp"
#include "rankq/kernels/w4a8.hpp"
#include "rankq/detail/lqer_reference.hpp"
#include "rankq/formats/lowrank.hpp"
#include "rankq/detail/kernels/lowrank_dispatch.hpp"
#include "rankq/detail/kernels/lowrank_layout.hpp"
#include "rankq/detail/kernels/tile_runner.hpp"

RANKQ_NAMESPACE_BEGIN

/// One 8-bit factor (Aᵀ: k x K or Bᵀ: N x k) in the kernels' layout: tiles of 16 rows, per tile `chunks` chunks
/// of 16 reduction values (256 code bytes + 16 f32 scales each, docs/lqer.md §6). Rows past `rows` and columns
/// past `cols` hold level 0 and rows past `rows` scale 0.
struct PackedLowRankFactor {
  std::size_t rows = 0, cols = 0;  ///< R x C of the source factor
  std::size_t tiles = 0, chunks = 0;
  AlignedBuffer<std::uint8_t> data;  ///< tiles * chunks * 320 bytes, 64-byte aligned

  std::size_t size_bytes() const { return data.size(); }
};

/// A packed low-rank correction: Aᵀ (k x K) and Bᵀ (N x k).
struct PackedLowRank {
  std::size_t rank = 0, out_features = 0, in_features = 0;  ///< k, N, K
  PackedLowRankFactor a_t, b_t;

  std::size_t size_bytes() const { return a_t.size_bytes() + b_t.size_bytes(); }
};

namespace detail {
inline PackedLowRankFactor pack_lowrank_factor(const UniformWeights& f, const char* fn, const char* name) {
  check_lowrank_factor(f, fn, name);
  PackedLowRankFactor p;
  p.rows = f.rows;
  p.cols = f.cols;
  p.tiles = ceil_div(f.rows, kLowRankRows);
  p.chunks = ceil_div(f.cols, kLowRankChunk);
  p.data.resize(p.tiles * p.chunks * kLowRankChunkBytes);
  auto* chunks = reinterpret_cast<PackedLowRankChunk*>(p.data.data());
  for (std::size_t i = 0; i < p.tiles * p.chunks; ++i) std::memset(chunks[i].codes, 128, sizeof(chunks[i].codes));
  for (std::size_t n = 0; n < f.rows; ++n) {
    const std::size_t tile = n / kLowRankRows, r = n % kLowRankRows;
    for (std::size_t c = 0; c < p.chunks; ++c) {
      PackedLowRankChunk& ch = chunks[tile * p.chunks + c];
      for (std::size_t j = 0; j < kLowRankChunk && c * kLowRankChunk + j < f.cols; ++j) {
        const std::size_t k = c * kLowRankChunk + j;
        const std::uint8_t u = f.codes[n * f.row_bytes + k];
        if (u == 0)
          throw_argument(fn, name, "row " + std::to_string(n) + " column " + std::to_string(k) +
                                       " holds level -128: the low-rank kernels take levels in [-127, 127]");
        ch.codes[j / 4][r][j % 4] = u;
      }
      ch.scales[r] = factor_chunk_scale(f, n, c);
    }
  }
  return p;
}

/// Σ of each 16-value chunk of each row of int8 activations (the vpdpbusd paths' offset correction): M · chunks.
inline void activation_chunk_sums(const std::int8_t* x, std::size_t stride, std::size_t M, std::size_t chunks,
                                  std::int32_t* out) {
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t c = 0; c < chunks; ++c) {
      std::int32_t s = 0;
      for (std::size_t j = 0; j < kLowRankChunk; ++j) s += x[m * stride + c * kLowRankChunk + j];
      out[m * chunks + c] = s;
    }
}

/// Arguments of one factor's product for the int8 activations `x` (its scales taken per 16-chunk). The per-chunk
/// scales and sums go to the scratch's buffers of `stage` (0: x·A, 1: t_q·B), so both passes can be alive at once.
struct LowRankPass {
  LowRankArgs args;
  LowRankPass(const PackedLowRankFactor& f, const QuantizedActivations& x, float* out, std::size_t ldo, bool accumulate,
              const float* bias, KernelScratch& scratch, int stage) {
    float* scales = scratch.chunk_scales[stage].get(x.rows * f.chunks);
    std::int32_t* sums = scratch.chunk_sums[stage].get(x.rows * f.chunks);
    activation_chunk_scales(x, f.chunks, scales);
    activation_chunk_sums(x.values.data(), x.padded, x.rows, f.chunks, sums);
    args.page_ahead = page_ahead_hint();
    args.packed = f.data.data();
    args.rows = f.rows;
    args.chunks = f.chunks;
    args.M = x.rows;
    args.x = x.values.data();
    args.x_stride = x.padded;
    args.x_scales = scales;
    args.x_sums = sums;
    args.out = out;
    args.ldo = ldo;
    args.accumulate = accumulate;
    args.bias = bias;
  }
};

inline void run_lowrank_pass(const LowRankArgs& a, std::size_t tiles, KernelPath path, const ParallelFor* parallel) {
  struct Call {
    const LowRankArgs* a;
    KernelPath path;
  } call{&a, path};
  const Call* c = &call;  // one pointer captured: the hook's std::function does not allocate
  run_tiles(tiles, parallel, [c](std::size_t t0, std::size_t t1) { lowrank_dispatch(c->path, *c->a, t0, t1); });
}

inline void check_lowrank_shapes(const QuantizedActivations& x, const PackedLowRank& lr, const char* fn) {
  if (lr.rank == 0 || lr.a_t.rows != lr.rank || lr.a_t.cols != lr.in_features || lr.b_t.rows != lr.out_features ||
      lr.b_t.cols != lr.rank || lr.a_t.data.empty() || lr.b_t.data.empty())
    throw_argument(fn, "lr", "is empty or inconsistent (use pack_lowrank)");
  if (x.rows == 0) throw_argument(fn, "x", "has no rows");
  if (x.cols != lr.in_features)
    throw_argument(fn, "x", "has K = " + std::to_string(x.cols) + " but the correction has K = " + std::to_string(lr.in_features));
  if (x.padded < lr.a_t.chunks * kLowRankChunk)
    throw_argument(fn, "x", "is padded to " + std::to_string(x.padded) + " columns, fewer than the correction's " +
                                std::to_string(lr.a_t.chunks * kLowRankChunk));
}

/// Stage 1 and 2 of the correction on a kernel path: t = x·A (x.rows x k floats, written whole) and t_q = Q(t)
/// (x's format, padded to round_up(k, 16)). Parallel over 16-rank tiles.
inline void lowrank_project(const QuantizedActivations& x, const PackedLowRank& lr, KernelPath path,
                            const ParallelFor* parallel, float* t, QuantizedActivations& t_q, KernelScratch& scratch) {
  const LowRankPass pass(lr.a_t, x, t, lr.rank, false, nullptr, scratch, 0);
  run_lowrank_pass(pass.args, lr.a_t.tiles, path, parallel);
  quantize_activations(MatrixView<const float>(t, x.rows, lr.rank), x.format, t_q, lr.b_t.chunks * kLowRankChunk);
}

/// The whole correction alone on a kernel path (for tests): t, t_q and u = t_q·B (M x N), no output rounding.
inline void lowrank_correction_kernel(const QuantizedActivations& x, const PackedLowRank& lr, KernelPath path,
                                      const ParallelFor* parallel, LowRankTerms& out) {
  constexpr const char* fn = "lowrank_correction_kernel";
  check_path(path, fn);
  check_lowrank_shapes(x, lr, fn);
  KernelScratch scratch;
  out.t.assign(x.rows * lr.rank, 0.0f);
  lowrank_project(x, lr, path, parallel, out.t.data(), out.t_q, scratch);
  out.u.assign(x.rows * lr.out_features, 0.0f);
  const LowRankPass pass(lr.b_t, out.t_q, out.u.data(), lr.out_features, false, nullptr, scratch, 1);
  run_lowrank_pass(pass.args, lr.b_t.tiles, path, parallel);
}
}  // namespace detail

/// Packs the 8-bit factors Aᵀ (k x K) and Bᵀ (N x k): symmetric 8-bit, groups a multiple of 16 along each
/// factor's reduction dimension, levels in [-127, 127] (what quantize_lqer produces in every LowRankStorage).
inline PackedLowRank pack_lowrank(const UniformWeights& a_t, const UniformWeights& b_t) {
  constexpr const char* fn = "pack_lowrank";
  if (a_t.rows == 0 || b_t.cols != a_t.rows)
    detail::throw_argument(fn, "b_t", "has " + std::to_string(b_t.cols) + " columns but a_t has " +
                                          std::to_string(a_t.rows) + " rows (both must equal the rank k >= 1)");
  PackedLowRank p;
  p.rank = a_t.rows;
  p.in_features = a_t.cols;
  p.out_features = b_t.rows;
  p.a_t = detail::pack_lowrank_factor(a_t, fn, "a_t");
  p.b_t = detail::pack_lowrank_factor(b_t, fn, "b_t");
  return p;
}

inline PackedLowRank pack_lowrank(const LowRankCorrection& c) {
  if (c.a_t.rows != c.rank || c.a_t.cols != c.in_features || c.b_t.rows != c.out_features || c.b_t.cols != c.rank)
    detail::throw_argument("pack_lowrank", "c", "has factors inconsistent with its rank and shape");
  return pack_lowrank(c.a_t, c.b_t);
}

namespace detail {
inline void check_lqer_call(const QuantizedActivations& x, const PackedW4& w, const PackedLowRank& lr, MatrixView<float> y,
                            KernelPath path, const char* fn) {
  if (lr.in_features != w.cols || lr.out_features != w.rows)
    throw_argument(fn, "lr", "is a correction for " + std::to_string(lr.out_features) + "x" +
                                 std::to_string(lr.in_features) + " weights but w is " + std::to_string(w.rows) + "x" +
                                 std::to_string(w.cols));
  check_lowrank_shapes(x, lr, fn);
  check_w4a8_call(x, w, y, path, fn);
}

/// lqer_gemm on activation side terms `terms` (checked arguments).
inline void run_lqer(const QuantizedActivations& x, const ActivationTermsView& terms, const PackedW4& w,
                     const PackedLowRank& lr, MatrixView<float> y, const W4A8Options& o, KernelScratch& scratch) {
  // Stages 1-2 (tiny: k x K and M x k): t = x·A, t_q = Q(t).
  float* t = scratch.lowrank_t.get(x.rows * lr.rank);
  QuantizedActivations& t_q = scratch.lowrank_tq;
  lowrank_project(x, lr, o.path, o.parallel, t, t_q, scratch);
  // Stage 3 is the W4A8 driver's declared fused epilogue (tile_runner.hpp): after each block of W4A8 tiles, the
  // same tiles of Bᵀ add (+ u) + bias to the rows just written. A block is as many tiles as make ~256 KiB of
  // outputs (at least 8), so the correction re-reads them from L2; at M = 1 that is a thread's whole range:
  // switching between the W4A8 and Bᵀ streams every few tiles measured 4-5 % of the decode time slower from DRAM
  // (docs/lqer.md §8). Any partition gives the same y: the per-row arithmetic does not depend on it.
  const LowRankPass pass(lr.b_t, t_q, y.data, y.ld, true, o.bias, scratch, 1);
  constexpr std::size_t kFuseOutputBytes = std::size_t(256) << 10;
  const LowRankEpilogue epilogue{&pass.args,
                                 std::max<std::size_t>(8, kFuseOutputBytes / (x.rows * kTileRows * sizeof(float)))};
  // The bias comes last, with u.
  run_w4a8(w4a8_args(x, terms, w, y, o.path, nullptr), w.tiles, o.path, o.parallel, &epilogue);
}
}  // namespace detail

/// Y (M x N) = x_q·W_qᵀ + u + bias with u = (Q(x_q·A))·B, the correction added unrounded (float): exactly the
/// semantics of lqer_reference_matmul(..., requantize_output = false). Per path: the W4A8 part is w4a8_gemm's
/// (integer parts exact, float epilogue within rounding); t = x_q·A, t_q and u are bit-identical to the reference
/// on every path, and y = (main + u) + bias with main what w4a8_gemm (no bias) writes on the same path.
/// x must be padded to w.padded. Threads over 16-row tiles through o.parallel; any partition gives identical y.
inline void lqer_gemm(const QuantizedActivations& x, const PackedW4& w, const PackedLowRank& lr, MatrixView<float> y,
                      const W4A8Options& o = {}) {
  constexpr const char* fn = "lqer_gemm";
  detail::check_lqer_call(x, w, lr, y, o.path, fn);
  Workspace temporary;
  detail::KernelScratch& scratch = (o.workspace ? *o.workspace : temporary).kernel_scratch();
  const auto terms = detail::compute_activation_terms(x, activation_terms(w), scratch.terms, o.path, fn);
  detail::run_lqer(x, terms, w, lr, y, o, scratch);
}

/// lqer_gemm on activations packed with activation_terms(w): no activation term is computed again.
inline void lqer_gemm(const PackedActivations& x, const PackedW4& w, const PackedLowRank& lr, MatrixView<float> y,
                      const W4A8Options& o = {}) {
  constexpr const char* fn = "lqer_gemm";
  detail::check_lqer_call(x.quantized(), w, lr, y, o.path, fn);
  const auto terms = x.terms_for(activation_terms(w), fn);
  Workspace temporary;
  detail::KernelScratch& scratch = (o.workspace ? *o.workspace : temporary).kernel_scratch();
  detail::run_lqer(x.quantized(), terms, w, lr, y, o, scratch);
}

/// Float activations in: quantizes X with `format` on o.path (into `scratch`, reused across calls), then lqer_gemm.
inline void lqer_linear(MatrixView<const float> x, const ActivationFormat& format, const PackedW4& w,
                        const PackedLowRank& lr, MatrixView<float> y, QuantizedActivations& scratch,
                        const W4A8Options& o = {}) {
  quantize_activations(x, format, scratch, w.padded, o.path);
  lqer_gemm(scratch, w, lr, y, o);
}

RANKQ_NAMESPACE_END  // namespace rankq
