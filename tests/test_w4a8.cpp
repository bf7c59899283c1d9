// Tests for rankq/kernels/w4a8.hpp: packing, and every kernel path the CPU supports against reference_matmul —
// size ladder, every format, extreme values bit for bit, tails against guard pages, threads, errors.
#include <rankq/kernels/reference.hpp>
#include <rankq/kernels/w4a8.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <set>
#include <vector>

#include "guarded_buffer.hpp"
#include "kernel_paths.hpp"
#include "test_util.hpp"

using namespace rankq;

namespace {

std::set<KernelPath> g_covered;
[[maybe_unused]] const bool g_coverage_registered = test::register_best_path_coverage("w4a8", &g_covered);

struct Case {
  std::size_t M, N, K;
  UniformFormat wf;
  ActivationFormat af;
};

// |terms| sum that bounds the float rounding of an output.
std::vector<double> magnitudes(const QuantizedActivations& x, const UniformWeights& w) {
  std::vector<double> mag(x.rows * w.rows, 0.0);
  for (std::size_t m = 0; m < x.rows; ++m)
    for (std::size_t n = 0; n < w.rows; ++n)
      for (std::size_t k = 0; k < w.cols; ++k) {
        const std::size_t g = k / w.group;
        mag[m * w.rows + n] += std::fabs(x.value(m, k)) * (w.scale(n, g) * double(w.code(n, k)) + std::fabs(w.offset(n, g)));
      }
  return mag;
}

void run_case(const Case& c, std::uint64_t seed) {
  auto wv = test::heavy_tailed(c.N * c.K, seed);
  auto xv = test::activations(c.M, c.K, seed + 1);
  auto w = quantize_uniform(MatrixView<const float>(wv.data(), c.N, c.K), c.wf);
  auto x = quantize_activations(MatrixView<const float>(xv.data(), c.M, c.K), c.af, w.padded);
  auto packed = pack_w4(w);
  std::vector<float> ref(c.M * c.N);
  reference_matmul(x, w, MatrixView<float>(ref.data(), c.M, c.N));
  const auto mag = magnitudes(x, w);
  for (KernelPath p : test::paths_under_test()) {
    std::vector<float> y(c.M * c.N, -1.0f);
    W4A8Options o;
    o.path = p;
    w4a8_gemm(x, packed, MatrixView<float>(y.data(), c.M, c.N), o);
    g_covered.insert(p);
    for (std::size_t i = 0; i < y.size(); ++i)
      ASSERT_NEAR(y[i], ref[i], 4e-6 * mag[i] + 1e-30)
          << to_string(p) << " M=" << c.M << " N=" << c.N << " K=" << c.K << " " << to_string(c.wf) << " "
          << to_string(c.af) << " i=" << i;
  }
}

const std::vector<std::size_t> kLadder = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 31, 33, 64, 172, 257};

const std::vector<UniformFormat> kFormats = {
    {4, 32, Symmetry::symmetric, ScaleType::f16},  {4, 128, Symmetry::asymmetric, ScaleType::f16},
    {4, 16, Symmetry::symmetric, ScaleType::f32},  {4, kWholeRow, Symmetry::asymmetric, ScaleType::f32},
    {4, 64, Symmetry::asymmetric, ScaleType::f16}, {3, 32, Symmetry::asymmetric, ScaleType::f16},
    {2, 64, Symmetry::symmetric, ScaleType::f16},  {3, 128, Symmetry::symmetric, ScaleType::f32}};

const std::vector<ActivationFormat> kActFormats = {{ActivationQuant::per_token, 32, MxSemantics::lqer},
                                                   {ActivationQuant::per_block, 16, MxSemantics::lqer},
                                                   {ActivationQuant::per_block, 32, MxSemantics::lqer},
                                                   {ActivationQuant::mxint8, 16, MxSemantics::lqer}};

}  // namespace

TEST(W4A8, PackingPreservesEveryCodeAndScale) {
  for (const auto& f : kFormats) {
    auto wv = test::heavy_tailed(37 * 172, 5);
    auto w = quantize_uniform(MatrixView<const float>(wv.data(), 37, 172), f);
    auto p = pack_w4(w);
    ASSERT_EQ(p.tiles, 3u);
    ASSERT_EQ(p.size_bytes(), p.tiles * p.geo.tile_stride());
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p.data.data()) % 64, 0u);
    for (std::size_t n = 0; n < 48; ++n) {
      const std::uint8_t* tile = p.data.data() + (n / 16) * p.geo.tile_stride();
      for (std::size_t g = 0; g < w.groups; ++g) {
        const std::uint8_t* gd = tile + g * p.geo.group_stride();
        for (std::size_t kk = 0; kk < w.group; ++kk)
          ASSERT_EQ(detail::packed_code(gd, n % 16, kk), n < 37 ? w.code(n, g * w.group + kk) : 0u);
        const float s = detail::load_packed_scale(gd + p.geo.code_bytes(), n % 16, f.scale_type);
        ASSERT_EQ(s, n < 37 ? w.scale(n, g) : 0.0f);
      }
    }
  }
}

TEST(W4A8, MatchesReferenceOverSizeLadder) {
  std::size_t i = 0;
  for (std::size_t a : kLadder) {
    run_case({a, 19, 172, kFormats[i % kFormats.size()], kActFormats[i % kActFormats.size()]}, 10 + i), ++i;
    run_case({3, a, 64, kFormats[i % kFormats.size()], kActFormats[i % kActFormats.size()]}, 10 + i), ++i;
    run_case({2, 33, a, kFormats[i % kFormats.size()], kActFormats[i % kActFormats.size()]}, 10 + i), ++i;
  }
}

TEST(W4A8, MatchesReferenceForEveryFormatPair) {
  std::size_t i = 0;
  for (const auto& wf : kFormats)
    for (const auto& af : kActFormats) run_case({5, 35, 257, wf, af}, 100 + i++);
}

TEST(W4A8, MatchesReferenceOnLargeShapes) {
  run_case({1, 1024, 4096, kFormats[0], kActFormats[0]}, 1);
  // Prefill paths: full token blocks + tails, K chunks (cache blocking) with and without the folded zero point.
  run_case({19, 50, 3000, kFormats[0], kActFormats[0]}, 4);
  run_case({21, 40, 2100, kFormats[0], kActFormats[0]}, 7);  // folded tile pairs + the odd third tile
  run_case({17, 33, 2100, kFormats[4], kActFormats[2]}, 5);
  run_case({16, 17, 1200, kFormats[6], kActFormats[3]}, 6);
  run_case({64, 257, 1024, kFormats[1], kActFormats[0]}, 2);
  run_case({33, 96, 2048, kFormats[2], kActFormats[1]}, 3);
}

TEST(W4A8, IntegerPartIsBitExactOnExtremes) {
  // Unit f32 scales and zero offsets (asymmetric) or the implied zero point 8 (symmetric) make every output the
  // exact integer Σ q_x·(t − z) (exact in float below 2^24). M = 11: one full 8-token prefill block plus a tail
  // (avx512vnni folded: one tile at a time); M = 19: two blocks plus a tail (folded: tile pairs, N = 19 = 2 tiles).
  std::mt19937 rng(42);
  for (std::size_t M : {11u, 19u})
  for (Symmetry sym : {Symmetry::asymmetric, Symmetry::symmetric})
    for (std::size_t K : {16u, 40u, 172u, 4096u}) {
      for (int mode = 0; mode < 5; ++mode) {
        const std::size_t N = 19;
        const std::int64_t zero = sym == Symmetry::symmetric ? 8 : 0;
        auto w = make_uniform_weights(UniformFormat{4, mode == 4 ? kWholeRow : std::size_t(32), sym, ScaleType::f32}, N, K);
        for (std::size_t n = 0; n < N; ++n)
          for (std::size_t k = 0; k < K; ++k) {
            unsigned t = mode == 0 ? 0u : mode == 1 ? 15u : static_cast<unsigned>(rng() % 16);
            detail::put_bits(w.codes.data() + n * w.row_bytes, k, 4, t);
          }
        for (auto& s : w.scales) s = 1.0f;
        std::vector<float> zeros(M * K, 0.0f);
        auto x = quantize_activations(MatrixView<const float>(zeros.data(), M, K), ActivationFormat{}, w.padded);
        for (std::size_t m = 0; m < M; ++m) {
          for (std::size_t k = 0; k < K; ++k) {
            // modes 0 and 1: the lowest / highest code against -128 (even tokens) and +127 (odd tokens)
            int v = mode <= 1 ? (m % 2 ? 127 : -128) : static_cast<int>(rng() % 256) - 128;
            x.values[m * x.padded + k] = static_cast<std::int8_t>(v);
          }
          x.scales[m] = 1.0f;
        }
        std::vector<double> exact(M * N, 0.0);
        for (std::size_t m = 0; m < M; ++m)
          for (std::size_t n = 0; n < N; ++n) {
            std::int64_t s = 0;
            for (std::size_t k = 0; k < K; ++k) s += std::int64_t(x.values[m * x.padded + k]) * (std::int64_t(w.code(n, k)) - zero);
            exact[m * N + n] = static_cast<double>(s);
          }
        auto packed = pack_w4(w);
        for (KernelPath p : test::paths_under_test()) {
          std::vector<float> y(M * N);
          W4A8Options o;
          o.path = p;
          w4a8_gemm(x, packed, MatrixView<float>(y.data(), M, N), o);
          g_covered.insert(p);
          for (std::size_t i = 0; i < y.size(); ++i)
            ASSERT_EQ(static_cast<double>(y[i]), exact[i]) << to_string(p) << " " << to_string(w.format) << " K=" << K << " mode=" << mode << " i=" << i;
        }
      }
    }
}

TEST(W4A8, ZeroScalesGiveZeroOutputs) {
  auto w = make_uniform_weights(UniformFormat{4, 32, Symmetry::symmetric, ScaleType::f16}, 20, 64);
  for (auto& b : w.codes) b = 0xFF;
  auto xv = test::activations(3, 64, 1);
  auto x = quantize_activations(MatrixView<const float>(xv.data(), 3, 64), ActivationFormat{});
  auto packed = pack_w4(w);
  for (KernelPath p : test::paths_under_test()) {
    std::vector<float> y(60, 1.0f);
    W4A8Options o;
    o.path = p;
    w4a8_gemm(x, packed, MatrixView<float>(y.data(), 3, 20), o);
    for (float v : y) ASSERT_EQ(v, 0.0f) << to_string(p);
  }
}

TEST(W4A8, TailsNeverReadPastTheirBuffers) {
  // fold: symmetric weights x per-token activations with the integer group sums (the folded zero point).
  for (bool fold : {false, true})
    for (std::size_t K : {16u, 24u, 172u, 200u})
    for (std::size_t N : {1u, 17u, 33u})
      for (std::size_t M : {1u, 3u, 7u, 9u}) {
        auto wv = test::heavy_tailed(N * K, K + N);
        auto xv = test::activations(M, K, M);
        const UniformFormat wf = fold ? UniformFormat{4, 16, Symmetry::symmetric, ScaleType::f16}
                                      : UniformFormat{4, 16, Symmetry::asymmetric, ScaleType::f16};
        const ActivationFormat af = fold ? ActivationFormat{} : ActivationFormat{ActivationQuant::per_block, 16, MxSemantics::lqer};
        auto w = quantize_uniform(MatrixView<const float>(wv.data(), N, K), wf);
        auto x = quantize_activations(MatrixView<const float>(xv.data(), M, K), af, w.padded);
        auto packed = pack_w4(w);
        std::vector<float> ref(M * N);
        w4a8_gemm(x, packed, MatrixView<float>(ref.data(), M, N), W4A8Options{KernelPath::scalar, nullptr, nullptr});
        // Same call through the detail entry point with every input in a guarded buffer.
        const std::size_t groups = packed.geo.groups;
        std::vector<float> xsum(M * groups);
        std::vector<std::int32_t> xqsum(M * groups);
        for (std::size_t m = 0; m < M; ++m)
          for (std::size_t k = 0; k < packed.padded; ++k) {
            xsum[m * groups + k / packed.geo.group] += x.value(m, k);
            xqsum[m * groups + k / packed.geo.group] += x.values[m * x.padded + k];
          }
        auto gw = test::GuardedBuffer::copy_of(packed.data.data(), packed.data.size());
        auto gx = test::GuardedBuffer::copy_of(x.values.data(), M * x.padded);
        auto gs = test::GuardedBuffer::copy_of(x.scales.data(), M * x.blocks);
        auto gsum = test::GuardedBuffer::copy_of(xsum.data(), xsum.size());
        auto gqsum = test::GuardedBuffer::copy_of(xqsum.data(), xqsum.size());
        test::GuardedBuffer gy(M * N * sizeof(float));
        detail::W4A8Args a;
        a.packed = gw.data();
        a.geo = packed.geo;
        a.scale_type = packed.scale_type;
        a.zero_code = 8.0f;
        a.rows = N;
        a.M = M;
        a.x = gx.as<std::int8_t>();
        a.x_padded = x.padded;
        a.x_scales = gs.as<float>();
        a.x_block = x.block;
        a.x_blocks = x.blocks;
        a.xsum = gsum.as<float>();
        a.xqsum = fold ? gqsum.as<std::int32_t>() : nullptr;
        a.y = gy.as<float>();
        a.ldy = N;
        for (KernelPath p : test::paths_under_test()) {
          if (fold && p == KernelPath::scalar) continue;  // the scalar path never reads xqsum
          detail::w4a8_dispatch(p, a, 0, packed.tiles);
          for (std::size_t i = 0; i < M * N; ++i)
            ASSERT_NEAR(gy.as<float>()[i], ref[i], 1e-4f * (1.0f + std::fabs(ref[i])))
                << to_string(p) << " fold=" << fold << " M=" << M << " N=" << N << " K=" << K;
        }
      }
}

TEST(W4A8, ThreadedResultsEqualSingleThreaded) {
  // symmetric x per-token: the folded zero point; M = 9: one 8-token block (folded: single tiles), M = 21: two
  // blocks (folded: tile pairs, split at odd tile counts by the uneven hook) plus a 5-token tail.
  for (std::size_t M : {9u, 21u})
  for (Symmetry sym : {Symmetry::asymmetric, Symmetry::symmetric}) {
    auto wv = test::heavy_tailed(333 * 520, 9);
    auto xv = test::activations(M, 520, 10);
    auto w = quantize_uniform(MatrixView<const float>(wv.data(), 333, 520), UniformFormat{4, 32, sym, ScaleType::f16});
    auto x = quantize_activations(MatrixView<const float>(xv.data(), M, 520), ActivationFormat{}, w.padded);
    auto packed = pack_w4(w);
    ThreadPool pool(2);
    ParallelFor pool_hook = pool.hook();
    ParallelFor uneven = [](std::size_t n, const std::function<void(std::size_t, std::size_t)>& body) {
      for (std::size_t b = 0; b < n;) {  // chunks of 1, 2, 3, ... tiles, in reverse-ish order of size
        const std::size_t e = std::min(n, b + 1 + b % 3);
        body(b, e);
        b = e;
      }
    };
    const bool hint = page_ahead_hint();
    for (KernelPath p : test::paths_under_test()) {
      std::vector<float> y1(M * 333), y2(M * 333), y3(M * 333), y4(M * 333);
      w4a8_gemm(x, packed, MatrixView<float>(y1.data(), M, 333), W4A8Options{p, nullptr, nullptr});
      w4a8_gemm(x, packed, MatrixView<float>(y2.data(), M, 333), W4A8Options{p, &pool_hook, nullptr});
      w4a8_gemm(x, packed, MatrixView<float>(y3.data(), M, 333), W4A8Options{p, &uneven, nullptr});
      set_page_ahead_hint(!hint);  // the prefetch hint changes no result
      w4a8_gemm(x, packed, MatrixView<float>(y4.data(), M, 333), W4A8Options{p, nullptr, nullptr});
      set_page_ahead_hint(hint);
      EXPECT_EQ(y1, y2) << to_string(p) << " M=" << M;
      EXPECT_EQ(y1, y3) << to_string(p) << " M=" << M;
      EXPECT_EQ(y1, y4) << to_string(p) << " M=" << M << " page-ahead " << !hint;
    }
  }
}

TEST(W4A8, BiasAndStridedOutput) {
  auto wv = test::heavy_tailed(20 * 64, 1);
  auto xv = test::activations(3, 64, 2);
  auto w = quantize_uniform(MatrixView<const float>(wv.data(), 20, 64), UniformFormat{});
  auto x = quantize_activations(MatrixView<const float>(xv.data(), 3, 64), ActivationFormat{}, w.padded);
  auto packed = pack_w4(w);
  std::vector<float> bias(20);
  for (std::size_t i = 0; i < 20; ++i) bias[i] = static_cast<float>(i);
  for (KernelPath p : test::paths_under_test()) {
    std::vector<float> y0(3 * 20), y1(3 * 25, -7.0f);
    w4a8_gemm(x, packed, MatrixView<float>(y0.data(), 3, 20), W4A8Options{p, nullptr, nullptr});
    w4a8_gemm(x, packed, MatrixView<float>(y1.data(), 3, 20, 25), W4A8Options{p, nullptr, bias.data()});
    for (std::size_t m = 0; m < 3; ++m) {
      for (std::size_t n = 0; n < 20; ++n) EXPECT_FLOAT_EQ(y1[m * 25 + n], y0[m * 20 + n] + bias[n]) << to_string(p);
      for (std::size_t n = 20; n < 25; ++n) EXPECT_EQ(y1[m * 25 + n], -7.0f) << "wrote past the row";
    }
  }
}

TEST(W4A8, InvalidArguments) {
  auto wv = test::heavy_tailed(20 * 40, 1);
  auto w = quantize_uniform(MatrixView<const float>(wv.data(), 20, 40), UniformFormat{4, 32, Symmetry::symmetric, ScaleType::f16});
  auto packed = pack_w4(w);
  auto xv = test::activations(2, 40, 2);
  auto x_badpad = quantize_activations(MatrixView<const float>(xv.data(), 2, 40), ActivationFormat{});
  auto x = quantize_activations(MatrixView<const float>(xv.data(), 2, 40), ActivationFormat{}, w.padded);
  std::vector<float> y(40);
  test::expect_invalid([&] { w4a8_gemm(x_badpad, packed, MatrixView<float>(y.data(), 2, 20)); }, "padded");
  test::expect_invalid([&] { w4a8_gemm(x, packed, MatrixView<float>(y.data(), 2, 19)); }, "'y'");
  const KernelPath foreign = RANKQ_ARCH_AARCH64 ? KernelPath::avx2 : KernelPath::neon;  // never compiled here
  test::expect_invalid([&] { w4a8_gemm(x, packed, MatrixView<float>(y.data(), 2, 20), W4A8Options{foreign, nullptr, nullptr}); }, "options.path");
  auto w8 = quantize_uniform(MatrixView<const float>(wv.data(), 20, 40), UniformFormat{8, 32, Symmetry::symmetric, ScaleType::f16});
  test::expect_invalid([&] { pack_w4(w8); }, "w.format.bits");
}
