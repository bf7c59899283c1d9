// benchmarks/bench_w4a8.hpp — the uniform W4A8 benchmark row that several benchmark binaries carry (so every
// other kernel reads as a ratio to it from one run): random 4-bit weights in a cold rotation set, w4a8_linear.
#pragma once

#include <benchmark/benchmark.h>

#include <rankq/kernels/threading.hpp>
#include <rankq/kernels/w4a8.hpp>

#include <cstddef>
#include <tuple>
#include <vector>

#include "bench_common.hpp"

namespace rankq::bench {

/// The rotation set (cold_copies) of one packed 4-bit N x K matrix: symmetric, f16 scales, random codes and scales.
inline const std::vector<PackedW4>& packed_w4_set(std::size_t N, std::size_t K, std::size_t group) {
  return cold_copies(std::make_tuple(N, K, group), [&] {
    return pack_w4(random_uniform_weights(UniformFormat{4, group, Symmetry::symmetric, ScaleType::f16}, N, K,
                                          N * 31 + K + group, 0.001f, 0.02f));
  });
}

/// w4a8_linear: float activations in (quantized per call, per token int8), float outputs; weights rotate.
/// page_ahead: -1 = the library's default for this CPU (page_ahead_hint()), 0 / 1 = forced off / on.
inline void bm_w4a8(benchmark::State& st, KernelPath path, std::size_t group, std::size_t M, Shape s,
                    std::size_t threads, int page_ahead = -1) {
  if (!path_supported(path)) return st.SkipWithError("path not supported on this CPU");
  const bool default_hint = page_ahead_hint();
  if (page_ahead >= 0) set_page_ahead_hint(page_ahead == 1);
  const std::vector<PackedW4>& w = packed_w4_set(s.N, s.K, group);
  const auto x = activations(M, s.K);
  std::vector<float> y(M * s.N);
  QuantizedActivations scratch;
  rotate_weights(st, w, path, M, s, threads, nullptr, y.data(), [&](const PackedW4& wi, const W4A8Options& o) {
    w4a8_linear(MatrixView<const float>(x.data(), M, s.K), ActivationFormat{}, wi, MatrixView<float>(y.data(), M, s.N),
                scratch, o);
  });
  set_page_ahead_hint(default_hint);
}

}  // namespace rankq::bench
