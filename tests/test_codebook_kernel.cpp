// tests/test_codebook_kernel.cpp — the packed codebook kernels (rankq/kernels/codebook_kernel.hpp) on every path the CPU
// supports, bit for bit against codebook_reference_matmul: packing, size ladder, every format, extreme int8 values,
// tails against guard pages, threads, errors.
#include <rankq/kernels/codebook_kernel.hpp>
#include <rankq/algorithms/lcq.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "guarded_buffer.hpp"
#include "kernel_paths.hpp"
#include "test_util.hpp"

using namespace rankq;

namespace {

std::set<KernelPath> g_covered;
[[maybe_unused]] const bool g_coverage_registered = test::register_best_path_coverage("codebook kernels", &g_covered);

std::vector<KernelPath> codebook_paths_under_test() { return test::paths_under_test(); }

CodebookWeights fitted(std::size_t N, std::size_t K, unsigned bits, std::size_t group, unsigned rank, bool dq,
                       std::uint64_t seed) {
  const auto w = test::heavy_tailed(N * K, seed);
  LcqOptions o;
  o.bits = bits;
  o.group_size = group;
  o.rank = rank;
  o.max_iterations = 2;
  o.threads = 1;
  o.double_quantize = dq;
  return fit_lcq(MatrixView<const float>(w.data(), N, K), o);
}

/// Every path gives exactly the reference's floats (compared as bit patterns).
void expect_bit_exact(const QuantizedActivations& x, const CodebookWeights& w, const CodebookKernelTables& kt,
                      const std::string& what, const float* bias = nullptr) {
  std::vector<float> ref(x.rows * w.rows);
  codebook_reference_matmul(x, w, kt, MatrixView<float>(ref.data(), x.rows, w.rows), bias);
  const PackedCodebook packed = pack_codebook(w, kt);
  for (KernelPath p : codebook_paths_under_test()) {
    std::vector<float> y(ref.size(), -1.0f);
    W4A8Options o;
    o.path = p;
    o.bias = bias;
    codebook_gemm(x, packed, MatrixView<float>(y.data(), x.rows, w.rows), o);
    g_covered.insert(p);
    for (std::size_t i = 0; i < y.size(); ++i)
      ASSERT_EQ(0, std::memcmp(&y[i], &ref[i], sizeof(float)))
          << to_string(p) << " " << what << " i=" << i << " y=" << y[i] << " ref=" << ref[i];
  }
}

void run_case(std::size_t M, std::size_t N, std::size_t K, unsigned bits, std::size_t group, unsigned rank, bool dq,
              const ActivationFormat& af, std::uint64_t seed, bool with_bias = false) {
  const CodebookWeights w = fitted(N, K, bits, group, rank, dq, seed);
  const auto xv = test::activations(M, K, seed + 1);
  const auto x = quantize_activations(MatrixView<const float>(xv.data(), M, K), af, w.padded);
  std::vector<float> bias(N);
  for (std::size_t n = 0; n < N; ++n) bias[n] = 0.5f - 0.125f * static_cast<float>(n);
  expect_bit_exact(x, w, make_codebook_kernel_tables(w),
                   "M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K) + " " +
                       to_string(w.format) + " " + to_string(af),
                   with_bias ? bias.data() : nullptr);
}

const std::vector<ActivationFormat> kActFormats = {{ActivationQuant::per_token, 32, MxSemantics::lqer},
                                                   {ActivationQuant::per_block, 16, MxSemantics::lqer},
                                                   {ActivationQuant::per_block, 32, MxSemantics::lqer},
                                                   {ActivationQuant::mxint8, 16, MxSemantics::ocp}};

const std::vector<std::size_t> kLadder = {1, 2, 3, 4, 5, 7, 8, 9, 13, 17, 31, 33, 64, 172, 257};
const std::vector<std::size_t> kGroups = {32, 64, 128, kWholeRow};

}  // namespace

TEST(CodebookKernel, PackingPreservesEveryIndexScaleAndOffset) {
  const CodebookWeights w = fitted(37, 172, 3, 64, 3, false, 5);
  const CodebookKernelTables kt = make_codebook_kernel_tables(w);
  const PackedCodebook p = pack_codebook(w, kt);
  ASSERT_EQ(p.tiles, 3u);
  ASSERT_EQ(p.data.size(), p.tiles * p.geo.tile_stride());
  ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p.data.data()) % 64, 0u);
  for (std::size_t n = 0; n < 48; ++n) {
    const std::uint8_t* tile = p.data.data() + (n / 16) * p.geo.tile_stride();
    for (std::size_t g = 0; g < w.groups; ++g) {
      const std::uint8_t* gd = tile + g * p.geo.group_stride();
      for (std::size_t kk = 0; kk < w.group; ++kk)
        ASSERT_EQ(detail::packed_code(gd, n % 16, kk), n < 37 ? w.index(n, g * w.group + kk) : 0u);
      for (unsigned r = 0; r < 3; ++r)
        ASSERT_EQ(detail::load_packed_f32(gd + p.geo.scales_at(), r * 16 + n % 16), n < 37 ? kt.group_scales[(n * w.groups + g) * 3 + r] : 0.0f);
      ASSERT_EQ(detail::load_packed_f32(gd + p.geo.offsets_at(), n % 16), n < 37 ? kt.group_offsets[n * w.groups + g] : 0.0f);
    }
  }
  for (unsigned r = 0; r < 3; ++r)
    for (unsigned t = 0; t < 16; ++t) ASSERT_EQ(p.lut[r * 16 + t], t < 8 ? kt.level(r, t) : 0);
}

TEST(CodebookKernel, BitExactOverSizeLadder) {
  std::size_t i = 0;
  for (std::size_t s : kLadder) {
    run_case(s, 19, 172, 4, kGroups[i % 4], 1 + i % 3, i % 2 == 1, kActFormats[i % 4], 10 + i), ++i;
    run_case(3, s, 64, 3, kGroups[i % 4], 1 + i % 3, i % 2 == 1, kActFormats[i % 4], 10 + i, true), ++i;
    run_case(2, 33, s, 2, kGroups[i % 4], 1 + i % 3, i % 2 == 1, kActFormats[i % 4], 10 + i), ++i;
  }
}

TEST(CodebookKernel, BitExactForEveryFormat) {
  std::size_t i = 0;
  for (unsigned bits : {2u, 3u, 4u})
    for (std::size_t group : kGroups)
      for (unsigned rank : {1u, 2u, 4u, 8u}) run_case(5, 35, 257, bits, group, rank, rank == 2, kActFormats[i % 4], 100 + i), ++i;
}

TEST(CodebookKernel, BitExactOnLargeShapes) {
  run_case(1, 256, 4096, 4, 128, 2, false, kActFormats[0], 1);
  run_case(33, 130, 1024, 3, 64, 3, true, kActFormats[1], 2, true);
  run_case(9, 96, 2048, 2, kWholeRow, 2, false, kActFormats[2], 3);
}

TEST(CodebookKernel, BitExactOnExtremeLevelsAndActivations) {
  // Levels ±127 and activations ±127 / −128 (reachable only by hand): the largest int32 sums; unit scales make
  // each output an exact integer sum while the bit patterns are still compared with the reference.
  std::mt19937 rng(42);
  for (std::size_t K : {16u, 40u, 172u, 4096u})
    for (int mode = 0; mode < 4; ++mode) {
      const std::size_t M = 5, N = 19;
      CodebookWeights w = make_codebook_weights(CodebookFormat{4, mode == 3 ? kWholeRow : std::size_t(32), 2, false}, N, K);
      for (std::size_t n = 0; n < N; ++n)
        for (std::size_t c = 0; c < K; ++c) detail::put_bits(w.indices.data() + n * w.row_bytes, c, 4, rng() % 16);
      CodebookKernelTables kt = make_codebook_kernel_tables(w);
      for (unsigned r = 0; r < 2; ++r)
        for (unsigned t = 0; t < 16; ++t)
          kt.vq[r * 16 + t] = static_cast<std::int8_t>(mode == 0 ? 127 : mode == 1 ? -127 : (rng() % 2 ? 127 : -127));
      for (auto& s : kt.group_scales) s = 1.0f;
      for (auto& b : kt.group_offsets) b = 0.0f;
      std::vector<float> zeros(M * K, 0.0f);
      auto x = quantize_activations(MatrixView<const float>(zeros.data(), M, K), ActivationFormat{}, w.padded);
      for (std::size_t m = 0; m < M; ++m) {
        for (std::size_t c = 0; c < K; ++c) {
          const int v = mode == 0 ? -128 : mode == 1 ? (m % 2 ? 127 : -128) : static_cast<int>(rng() % 256) - 128;
          x.values[m * x.padded + c] = static_cast<std::int8_t>(v);
        }
        x.scales[m] = 1.0f;
      }
      expect_bit_exact(x, w, kt, "extremes K=" + std::to_string(K) + " mode=" + std::to_string(mode));
    }
}

TEST(CodebookKernel, TailsNeverReadPastTheirBuffers) {
  for (std::size_t K : {16u, 24u, 172u})
    for (std::size_t N : {1u, 17u, 33u})
      for (std::size_t M : {1u, 3u, 9u}) {
        const CodebookWeights w = fitted(N, K, 4, 32, 2, false, K + N);
        const auto xv = test::activations(M, K, M);
        const auto x = quantize_activations(MatrixView<const float>(xv.data(), M, K),
                                            ActivationFormat{ActivationQuant::per_block, 16, MxSemantics::lqer}, w.padded);
        const PackedCodebook p = pack_codebook(w);
        std::vector<float> ref(M * N);
        codebook_gemm(x, p, MatrixView<float>(ref.data(), M, N), W4A8Options{KernelPath::scalar, nullptr, nullptr});
        detail::ActivationTermBuffers terms;
        const auto t = detail::compute_activation_terms(x, activation_terms(p), terms, KernelPath::scalar, "test");
        const std::vector<std::int64_t> prefix(t.prefix, t.prefix + M * t.prefix_stride);
        const std::vector<float> xs(t.group_sums, t.group_sums + M * p.geo.groups);
        auto gw = test::GuardedBuffer::copy_of(p.data.data(), p.data.size());
        auto glut = test::GuardedBuffer::copy_of(p.lut.data(), p.lut.size());
        auto gx = test::GuardedBuffer::copy_of(x.values.data(), M * x.padded);
        auto gs = test::GuardedBuffer::copy_of(x.scales.data(), M * x.blocks);
        auto gp = test::GuardedBuffer::copy_of(prefix.data(), prefix.size());
        auto gxs = test::GuardedBuffer::copy_of(xs.data(), xs.size());
        for (KernelPath path : codebook_paths_under_test()) {
          test::GuardedBuffer gy(M * N * sizeof(float));
          detail::CodebookArgs a;
          a.packed = gw.data();
          a.geo = p.geo;
          a.lut = glut.as<std::int8_t>();
          a.rows = N;
          a.M = M;
          a.x = gx.as<std::int8_t>();
          a.x_padded = x.padded;
          a.x_scales = gs.as<float>();
          a.x_block = x.block;
          a.x_blocks = x.blocks;
          a.x_prefix = gp.as<std::int64_t>();
          a.prefix_stride = x.padded / 16 + 1;
          a.xs = gxs.as<float>();
          a.y = gy.as<float>();
          a.ldy = N;
          detail::codebook_dispatch(path, a, 0, p.tiles);
          ASSERT_EQ(0, std::memcmp(gy.data(), ref.data(), M * N * sizeof(float))) << to_string(path) << " K=" << K << " N=" << N << " M=" << M;
          g_covered.insert(path);
        }
      }
}

TEST(CodebookKernel, ThreadsGiveIdenticalResults) {
  const CodebookWeights w = fitted(100, 256, 4, 64, 2, false, 7);
  const auto xv = test::activations(6, 256, 8);
  const auto x = quantize_activations(MatrixView<const float>(xv.data(), 6, 256), ActivationFormat{}, w.padded);
  const PackedCodebook p = pack_codebook(w);
  ThreadPool pool(3);
  const ParallelFor hook = pool.hook();
  for (KernelPath path : codebook_paths_under_test()) {
    std::vector<float> a(600), b(600);
    codebook_gemm(x, p, MatrixView<float>(a.data(), 6, 100), W4A8Options{path, nullptr, nullptr});
    codebook_gemm(x, p, MatrixView<float>(b.data(), 6, 100), W4A8Options{path, &hook, nullptr});
    ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << to_string(path);
  }
}

TEST(CodebookKernel, RejectsBadArguments) {
  const CodebookWeights w = fitted(8, 64, 4, 32, 2, false, 9);
  const PackedCodebook p = pack_codebook(w);
  const auto xv = test::activations(2, 64, 10);
  const auto x = quantize_activations(MatrixView<const float>(xv.data(), 2, 64), ActivationFormat{}, w.padded);
  std::vector<float> y(16);
  test::expect_invalid([&] { codebook_gemm(x, p, MatrixView<float>(y.data(), 2, 7)); }, "'y'");
  const auto x_bad = quantize_activations(MatrixView<const float>(xv.data(), 2, 48), ActivationFormat{});
  test::expect_invalid([&] { codebook_gemm(x_bad, p, MatrixView<float>(y.data(), 2, 8)); }, "'x'");
  for (KernelPath path : {KernelPath::neon, KernelPath::neon_dotprod, KernelPath::avx512_vnni})
    if (!path_supported(path))
      test::expect_invalid([&] { codebook_gemm(x, p, MatrixView<float>(y.data(), 2, 8), W4A8Options{path, nullptr, nullptr}); },
                           "'options.path'");
  const CodebookWeights other = fitted(8, 64, 4, 32, 3, false, 9);
  test::expect_invalid([&] { pack_codebook(w, make_codebook_kernel_tables(other)); }, "'kt'");
}

TEST(CodebookKernel, RejectsGroupsWhoseInt32SumsCouldOverflow) {
  // A whole-row group longer than kMaxCodebookSegment: |Σ q_x·Vq| could exceed 2^31 − 1, so packing refuses.
  CodebookWeights w = make_codebook_weights(CodebookFormat{4, kWholeRow, 1, false}, 1, kMaxCodebookSegment + 16);
  for (unsigned t = 0; t < 16; ++t) w.V[t] = static_cast<float>(t);
  w.S[0] = 1.0f;
  test::expect_invalid([&] { pack_codebook(w); }, "'w'");
}
