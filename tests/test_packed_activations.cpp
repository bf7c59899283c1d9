// Tests for rankq/kernels/packed_activations.hpp: pack_activations gives the codes and scales of
// quantize_activations and side terms equal, bit for bit on every path, to an independent scalar computation;
// the kernels give the same outputs from packed activations as from quantized ones, and refuse activations
// packed for other weights or left unusable by a failed pack.
#include <rankq/kernels/codebook_kernel.hpp>
#include <rankq/kernels/lowrank_kernel.hpp>
#include <rankq/kernels/packed_activations.hpp>
#include <rankq/kernels/w4a8.hpp>
#include <rankq/kernels/w8a8_kernel.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <vector>

#include "kernel_paths.hpp"
#include "test_util.hpp"

using namespace rankq;

namespace {

std::set<KernelPath> g_covered;
[[maybe_unused]] const bool g_coverage_registered = test::register_best_path_coverage("pack_activations", &g_covered);

const std::vector<ActivationFormat> kFormats = {{ActivationQuant::per_token, 32, MxSemantics::lqer},
                                                {ActivationQuant::per_block, 16, MxSemantics::lqer},
                                                {ActivationQuant::per_block, 32, MxSemantics::lqer},
                                                {ActivationQuant::mxint8, 16, MxSemantics::lqer},
                                                {ActivationQuant::mxint8, 32, MxSemantics::ocp}};

/// The side terms written out naively from their definition (docs/kernels.md §8.1).
struct NaiveTerms {
  std::vector<float> sums;
  std::vector<std::int32_t> qsums;
  std::vector<std::int64_t> prefix;
};
NaiveTerms naive_terms(const QuantizedActivations& x, std::size_t group) {
  NaiveTerms t;
  const std::size_t groups = x.padded / group, stride = x.padded / 16 + 1;
  for (std::size_t m = 0; m < x.rows; ++m) {
    std::int64_t run = 0;
    t.prefix.push_back(0);
    for (std::size_t k = 0; k < x.padded; ++k) {
      run += x.row(m)[k];
      if ((k + 1) % 16 == 0) t.prefix.push_back(run);
    }
    EXPECT_EQ(t.prefix.size(), (m + 1) * stride);
    for (std::size_t g = 0; g < groups; ++g) {
      float s = 0.0f;
      std::int32_t total = 0;
      for (std::size_t k = g * group; k < (g + 1) * group;) {  // one fma per (group ∩ activation block)
        const std::size_t b = k / x.block, end = std::min((g + 1) * group, (b + 1) * x.block);
        std::int32_t seg = 0;
        for (std::size_t j = k; j < end; ++j) seg += x.row(m)[j];
        s = std::fma(x.scale(m, b), static_cast<float>(seg), s);
        total += seg;
        k = end;
      }
      t.sums.push_back(s);
      t.qsums.push_back(total);
    }
  }
  return t;
}

std::vector<float> extreme_rows(std::size_t M, std::size_t K) {
  std::vector<float> x = test::activations(M, K, 11);
  for (std::size_t k = 0; k < K; ++k) {
    x[k] = -1e30f;                                   // row 0: every code -127
    if (M > 1) x[K + k] = (k % 2) ? 3e-38f : -3e-38f;  // row 1: tiny values, saturating scale
    if (M > 2) x[2 * K + k] = 0.0f;                  // row 2: zero row
  }
  return x;
}

}  // namespace

TEST(PackedActivations, CodesScalesAndSideTermsMatchTheDefinitionOnEveryPath) {
  for (const auto& f : kFormats)
    for (std::size_t group : {16u, 32u, 48u, 128u})
      for (std::size_t M : {1u, 3u, 5u}) {
        const std::size_t K = 3 * group + 5, padded = (K + group - 1) / group * group;
        for (bool extreme : {false, true}) {
          const auto xv = extreme ? extreme_rows(M, K) : test::activations(M, K, group + M);
          const MatrixView<const float> x(xv.data(), M, K);
          const QuantizedActivations q = quantize_activations(x, f, padded);
          const NaiveTerms ref = naive_terms(q, group);
          for (bool prefix : {false, true})
            for (KernelPath p : test::paths_under_test()) {
              PackedActivations packed;
              pack_activations(x, f, ActivationTerms{padded, group, true, prefix, !prefix}, packed, p);
              const QuantizedActivations& got = packed.quantized();
              ASSERT_EQ(got.padded, q.padded);
              ASSERT_EQ(0, std::memcmp(got.values.data(), q.values.data(), q.values.size())) << to_string(p);
              ASSERT_EQ(0, std::memcmp(got.scales.data(), q.scales.data(), q.scales.size() * 4)) << to_string(p);
              const auto t = packed.terms_for(ActivationTerms{padded, group, true, prefix, !prefix}, "test");
              for (std::size_t i = 0; i < ref.sums.size(); ++i) {
                ASSERT_EQ(float_bits(t.group_sums[i]), float_bits(ref.sums[i])) << to_string(p) << " prefix " << prefix << " i " << i;
                ASSERT_EQ(t.group_qsums[i], ref.qsums[i]) << to_string(p);
              }
              const std::size_t stride = padded / 16 + 1, chunks = padded / 16;
              if (prefix) {
                ASSERT_EQ(t.prefix_stride, stride);
                for (std::size_t i = 0; i < ref.prefix.size(); ++i) ASSERT_EQ(t.prefix[i], ref.prefix[i]) << to_string(p);
                EXPECT_EQ(t.chunk_sums, nullptr);
              } else {  // chunk sums instead
                EXPECT_EQ(t.prefix, nullptr);
                for (std::size_t m = 0; m < M; ++m)
                  for (std::size_t c = 0; c < chunks; ++c)
                    ASSERT_EQ(t.chunk_sums[m * chunks + c], ref.prefix[m * stride + c + 1] - ref.prefix[m * stride + c])
                        << to_string(p) << " m " << m << " c " << c;
              }
              // The same terms from already quantized activations (the QuantizedActivations entry points).
              detail::ActivationTermBuffers buffers;
              const auto t2 = detail::compute_activation_terms(q, ActivationTerms{padded, group, true, prefix, !prefix}, buffers, p, "test");
              ASSERT_EQ(0, std::memcmp(t2.group_sums, t.group_sums, ref.sums.size() * 4)) << to_string(p);
              g_covered.insert(p);
            }
        }
      }
}

TEST(PackedActivations, KernelsGiveTheSameOutputsAsFromQuantizedActivations) {
  const std::size_t N = 37, K = 200, M = 3;
  const auto wv = test::heavy_tailed(N * K, 3);
  const auto xv = test::activations(M, K, 4);
  const MatrixView<const float> x(xv.data(), M, K);
  for (Symmetry sym : {Symmetry::symmetric, Symmetry::asymmetric}) {
    UniformFormat uf;
    uf.symmetry = sym;
    uf.group_size = 32;
    const PackedW4 w = pack_w4(quantize_uniform(MatrixView<const float>(wv.data(), N, K), uf));
    for (const auto& f : kFormats)
      for (KernelPath p : test::paths_under_test()) {
        const W4A8Options o{p, nullptr, nullptr};
        std::vector<float> y1(M * N), y2(M * N, -1.0f);
        w4a8_gemm(quantize_activations(x, f, w.padded), w, MatrixView<float>(y1.data(), M, N), o);
        PackedActivations packed;
        pack_activations(x, f, activation_terms(w), packed, p);
        w4a8_gemm(packed, w, MatrixView<float>(y2.data(), M, N), o);
        ASSERT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * 4)) << to_string(p) << " " << to_string(f);
      }
    UniformFormat f8 = uf;
    f8.bits = 8;
    const PackedW8 w8 = pack_w8(quantize_uniform(MatrixView<const float>(wv.data(), N, K), f8));
    for (const auto& f : kFormats)
      for (KernelPath p : test::paths_under_test()) {
        const W4A8Options o{p, nullptr, nullptr};
        std::vector<float> y1(M * N), y2(M * N, -1.0f);
        w8a8_gemm(quantize_activations(x, f, w8.padded), w8, MatrixView<float>(y1.data(), M, N), o);
        PackedActivations packed;
        pack_activations(x, f, activation_terms(w8), packed, p);
        w8a8_gemm(packed, w8, MatrixView<float>(y2.data(), M, N), o);
        ASSERT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * 4)) << "w8a8 " << to_string(p) << " " << to_string(f);
      }
  }
}

TEST(PackedActivations, KernelsRefuseActivationsPackedForOtherWeights) {
  const std::size_t N = 16, K = 64;
  const auto wv = test::heavy_tailed(N * K, 3);
  const auto xv = test::activations(2, K, 4);
  const MatrixView<const float> x(xv.data(), 2, K);
  UniformFormat g32, g64;
  g32.group_size = 32;
  g64.group_size = 64;
  const PackedW4 w32 = pack_w4(quantize_uniform(MatrixView<const float>(wv.data(), N, K), g32));
  const PackedW4 w64 = pack_w4(quantize_uniform(MatrixView<const float>(wv.data(), N, K), g64));
  std::vector<float> y(2 * N);
  PackedActivations packed;
  pack_activations(x, ActivationFormat{}, activation_terms(w32), packed);
  test::expect_invalid([&] { w4a8_gemm(packed, w64, MatrixView<float>(y.data(), 2, N)); }, "'x'");
  // Symmetric weights need integer group sums: terms without them are refused.
  pack_activations(x, ActivationFormat{}, ActivationTerms{w32.padded, 32, false, false}, packed);
  test::expect_invalid([&] { w4a8_gemm(packed, w32, MatrixView<float>(y.data(), 2, N)); }, "'x'");
  // A failed pack (non-finite activation) leaves nothing a kernel accepts.
  pack_activations(x, ActivationFormat{}, activation_terms(w32), packed);
  std::vector<float> bad = xv;
  bad[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(pack_activations(MatrixView<const float>(bad.data(), 2, K), ActivationFormat{}, activation_terms(w32), packed),
               rankq::invalid_argument);
  test::expect_invalid([&] { w4a8_gemm(packed, w32, MatrixView<float>(y.data(), 2, N)); }, "packed for nothing");
  // Invalid terms are named.
  test::expect_invalid([&] { pack_activations(x, ActivationFormat{}, ActivationTerms{60, 16, false, false}, packed); }, "'terms'");
  test::expect_invalid([&] { pack_activations(x, ActivationFormat{}, ActivationTerms{64, 24, false, false}, packed); }, "'terms'");
  test::expect_invalid([&] { pack_activations(x, ActivationFormat{}, ActivationTerms{48, 16, false, false}, packed); }, "'terms'");
}
