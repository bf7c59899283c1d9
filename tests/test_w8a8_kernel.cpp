// Tests for rankq/kernels/w8a8_kernel.hpp: the packed 8-bit layout byte by byte; on every kernel path the output
// bit-identical to the scalar path's and within float rounding of reference_matmul (every group size, symmetry,
// scale type, MXINT8, activation format, tails of N/K/M); the integer part exact against reference_matmul (unit
// scales) on random and extreme codes and activations (level -128 x -128, 127 x 127, vpmaddubsw saturation
// patterns, the int32 limit at the largest K); threads; clear errors.
#include <rankq/kernels/reference.hpp>
#include <rankq/kernels/w8a8_kernel.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kernel_paths.hpp"
#include "test_util.hpp"

using namespace rankq;

namespace {

std::set<KernelPath> g_covered;
[[maybe_unused]] const bool g_coverage_registered = test::register_best_path_coverage("w8a8 kernels", &g_covered);

// |terms| sum that bounds the float rounding of an output (as in test_w4a8).
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

std::vector<float> run(const QuantizedActivations& x, const PackedW8& w, KernelPath p, const ParallelFor* parallel = nullptr,
                       const float* bias = nullptr) {
  std::vector<float> y(x.rows * w.rows, -1.0f);
  W4A8Options o;
  o.path = p;
  o.parallel = parallel;
  o.bias = bias;
  w8a8_gemm(x, w, MatrixView<float>(y.data(), x.rows, w.rows), o);
  return y;
}

void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(0, std::memcmp(&got[i], &want[i], sizeof(float))) << what << " at " << i << ": " << got[i] << " vs " << want[i];
}

/// Every path bit for bit against the scalar path, the scalar path within rounding of reference_matmul.
void check_all_paths(const QuantizedActivations& x, const UniformWeights& w, const std::string& what, const float* bias = nullptr) {
  const PackedW8 packed = pack_w8(w);
  std::vector<float> ref(x.rows * w.rows);
  reference_matmul(x, w, MatrixView<float>(ref.data(), x.rows, w.rows), bias);
  const auto mag = magnitudes(x, w);
  const std::vector<float> scalar = run(x, packed, KernelPath::scalar, nullptr, bias);
  for (std::size_t i = 0; i < ref.size(); ++i)
    ASSERT_NEAR(scalar[i], ref[i], 4e-6 * mag[i] + 1e-30) << what << " scalar vs reference_matmul at " << i;
  for (KernelPath p : test::paths_under_test()) {
    expect_same_bits(run(x, packed, p, nullptr, bias), scalar, what + " " + to_string(p));
    g_covered.insert(p);
  }
}

UniformWeights random_weights(std::size_t N, std::size_t K, const UniformFormat& f, std::uint64_t seed) {
  const auto wv = test::heavy_tailed(N * K, seed);
  return quantize_uniform(MatrixView<const float>(wv.data(), N, K), f);
}

/// Weights with the given codes (code(n, k)) and unit scales; offsets z (asymmetric) so that w^ = t − z.
UniformWeights coded_weights(std::size_t N, std::size_t K, std::size_t group, Symmetry sym, float z,
                             const std::function<unsigned(std::size_t, std::size_t)>& code) {
  UniformWeights w = make_uniform_weights(UniformFormat{8, group, sym, ScaleType::f32}, N, K);
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t k = 0; k < K; ++k) w.codes[n * w.row_bytes + k] = static_cast<std::uint8_t>(code(n, k));
  for (auto& s : w.scales) s = 1.0f;
  for (auto& o : w.offsets) o = z;
  return w;
}

/// Activations with the given int8 values and unit scales (per token), padded like `w`: -128 included, which
/// quantize_activations never produces but a caller may.
QuantizedActivations coded_activations(std::size_t M, std::size_t K, std::size_t padded,
                                       const std::function<int(std::size_t, std::size_t)>& value) {
  std::vector<float> zeros(M * K, 0.0f);
  QuantizedActivations x = quantize_activations(MatrixView<const float>(zeros.data(), M, K), ActivationFormat{}, padded);
  for (std::size_t m = 0; m < M; ++m) {
    for (std::size_t k = 0; k < K; ++k) x.values[m * padded + k] = static_cast<std::int8_t>(value(m, k));
    x.scales[m] = 1.0f;
  }
  return x;
}

/// Exact integers: every path must equal reference_matmul bit for bit (values below 2^24 or exactly representable).
void check_exact(const QuantizedActivations& x, const UniformWeights& w, const std::string& what) {
  const PackedW8 packed = pack_w8(w);
  std::vector<float> ref(x.rows * w.rows);
  reference_matmul(x, w, MatrixView<float>(ref.data(), x.rows, w.rows));
  for (KernelPath p : test::paths_under_test()) {
    expect_same_bits(run(x, packed, p), ref, what + " " + to_string(p));
    g_covered.insert(p);
  }
}

}  // namespace

TEST(W8A8Kernel, PackedLayoutByteByByte) {
  for (Symmetry sym : {Symmetry::symmetric, Symmetry::asymmetric})
    for (ScaleType st : {ScaleType::f16, ScaleType::f32}) {
      const std::size_t N = 20, K = 40;  // 2 tiles (the second with 4 rows), K_pad = 48, 3 groups of 16
      const UniformWeights w = random_weights(N, K, UniformFormat{8, 16, sym, st}, 5);
      const PackedW8 p = pack_w8(w);
      const std::size_t sb = st == ScaleType::f16 ? 2 : 4, groups = 3;
      const std::size_t header = (groups * 16 * sb * (sym == Symmetry::asymmetric ? 2 : 1) + 63) / 64 * 64;
      ASSERT_EQ(p.tiles, 2u);
      ASSERT_EQ(p.geo.header_bytes(), header);
      ASSERT_EQ(p.geo.tile_stride(), header + 3 * 256);
      ASSERT_EQ(p.size_bytes(), 2 * p.geo.tile_stride());
      ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p.data.data()) % 64, 0u);
      auto value = [&](const std::uint8_t* at) {
        return sb == 2 ? half_to_float(static_cast<std::uint16_t>(at[0] | at[1] << 8)) : [&] {
          float f;
          std::memcpy(&f, at, 4);
          return f;
        }();
      };
      for (std::size_t n = 0; n < 32; ++n) {
        const std::uint8_t* tile = p.data.data() + n / 16 * p.geo.tile_stride();
        const std::size_t r = n % 16;
        for (std::size_t k = 0; k < 48; ++k) {
          const std::uint8_t byte = tile[header + k / 16 * 256 + (k % 16 / 4) * 64 + 4 * r + k % 4];
          const unsigned want = n < N && k < K ? w.code(n, k) : 128u;
          ASSERT_EQ(byte, want) << "n=" << n << " k=" << k;
        }
        for (std::size_t g = 0; g < groups; ++g) {
          ASSERT_EQ(value(tile + (g * 16 + r) * sb), n < N ? w.scale(n, g) : 0.0f) << "scale n=" << n << " g=" << g;
          if (sym == Symmetry::asymmetric) {
            ASSERT_EQ(value(tile + (groups * 16 + g * 16 + r) * sb), n < N ? w.offsets[n * groups + g] : 0.0f);
          }
        }
      }
    }
}

TEST(W8A8Kernel, EveryPathMatchesScalarBitForBitAndReferenceWithinRounding) {
  const std::vector<UniformFormat> formats = {
      {8, 16, Symmetry::symmetric, ScaleType::f16},  {8, 32, Symmetry::asymmetric, ScaleType::f16},
      {8, 64, Symmetry::symmetric, ScaleType::f32},  {8, 128, Symmetry::asymmetric, ScaleType::f32},
      {8, 128, Symmetry::symmetric, ScaleType::f16}, {8, kWholeRow, Symmetry::asymmetric, ScaleType::f16},
      {8, kWholeRow, Symmetry::symmetric, ScaleType::f32}};
  const std::vector<ActivationFormat> act = {{ActivationQuant::per_token, 32, MxSemantics::lqer},
                                             {ActivationQuant::per_block, 16, MxSemantics::lqer},
                                             {ActivationQuant::per_block, 32, MxSemantics::lqer},
                                             {ActivationQuant::mxint8, 32, MxSemantics::ocp}};
  struct Shape {
    std::size_t M, N, K;
  };
  const Shape shapes[] = {{1, 1, 16}, {1, 33, 300}, {3, 17, 130}, {17, 50, 200}, {5, 16, 520}, {3, 64, 40}};
  std::uint64_t seed = 10;
  for (const auto& f : formats)
    for (const auto& af : act)
      for (const Shape& s : shapes) {
        const UniformWeights w = random_weights(s.N, s.K, f, ++seed);
        const auto xv = test::activations(s.M, s.K, ++seed);
        const auto x = quantize_activations(MatrixView<const float>(xv.data(), s.M, s.K), af, w.padded);
        check_all_paths(x, w, to_string(f) + " " + to_string(af) + " M=" + std::to_string(s.M) + " N=" +
                                  std::to_string(s.N) + " K=" + std::to_string(s.K));
      }
}

TEST(W8A8Kernel, MxInt8WeightsAndBias) {
  const std::size_t M = 17, N = 37, K = 100;
  const auto wv = test::heavy_tailed(N * K, 3);
  for (std::size_t block : {16u, 32u}) {
    const UniformWeights w = to_uniform(quantize_mxint(MatrixView<const float>(wv.data(), N, K), MxFormat{8, block, MxSemantics::lqer}));
    const auto xv = test::activations(M, K, 4);
    const auto x = quantize_activations(MatrixView<const float>(xv.data(), M, K), ActivationFormat{}, w.padded);
    std::vector<float> bias(N);
    for (std::size_t n = 0; n < N; ++n) bias[n] = 0.1f * static_cast<float>(n) - 1.0f;
    check_all_paths(x, w, "mxint8-b" + std::to_string(block));
    check_all_paths(x, w, "mxint8-b" + std::to_string(block) + " bias", bias.data());
  }
}

TEST(W8A8Kernel, IntegerPartIsExactOnRandomCodes) {
  std::mt19937 rng(7);
  for (Symmetry sym : {Symmetry::symmetric, Symmetry::asymmetric})
    for (std::size_t group : {16u, 64u, 0u})
      for (std::size_t M : {1u, 3u, 17u}) {
        const std::size_t N = 35, K = 200;  // |y| <= 128·128·K < 2^24: every float exact
        std::vector<unsigned> codes(N * K);
        std::vector<int> xs(M * K);
        for (auto& c : codes) c = rng() % 256;
        for (auto& v : xs) v = static_cast<int>(rng() % 256) - 128;
        const auto w = coded_weights(N, K, group, sym, sym == Symmetry::asymmetric ? 3.0f : 0.0f,
                                     [&](std::size_t n, std::size_t k) { return codes[n * K + k]; });
        const auto x = coded_activations(M, K, w.padded, [&](std::size_t m, std::size_t k) { return xs[m * K + k]; });
        check_exact(x, w, std::string(sym == Symmetry::symmetric ? "sym" : "asym") + " g" + std::to_string(group) +
                              " M=" + std::to_string(M));
      }
}

TEST(W8A8Kernel, ExtremeCodesAndActivations) {
  struct Pattern {
    const char* name;
    std::function<unsigned(std::size_t, std::size_t)> code;
    std::function<int(std::size_t, std::size_t)> x;
  };
  const Pattern patterns[] = {
      {"level -128 x -128", [](std::size_t, std::size_t) { return 0u; }, [](std::size_t, std::size_t) { return -128; }},
      {"level 127 x 127", [](std::size_t, std::size_t) { return 255u; }, [](std::size_t, std::size_t) { return 127; }},
      {"level -128 x 127", [](std::size_t, std::size_t) { return 0u; }, [](std::size_t, std::size_t) { return 127; }},
      {"level 127 x -128", [](std::size_t, std::size_t) { return 255u; }, [](std::size_t, std::size_t) { return -128; }},
      // vpmaddubsw pairs at the int16 edge: (l, x) = (-128, -128) twice is 32768, one past int16.
      {"saturation pairs", [](std::size_t n, std::size_t k) { return (n + k / 2) % 2 ? 255u : 0u; },
       [](std::size_t m, std::size_t k) { return (m + k / 2) % 2 ? 127 : -128; }},
      {"alternating", [](std::size_t, std::size_t k) { return k % 2 ? 255u : 0u; },
       [](std::size_t, std::size_t k) { return k % 3 == 0 ? -128 : 127; }},
      {"nibble edges", [](std::size_t n, std::size_t k) { return unsigned((n * 16 + k * 15) % 256); },
       [](std::size_t m, std::size_t k) { return (m + k) % 2 ? -128 : 127; }}};
  for (const Pattern& pat : patterns)
    for (Symmetry sym : {Symmetry::symmetric, Symmetry::asymmetric})
      for (std::size_t M : {1u, 3u, 17u})
        for (std::size_t K : {16u, 40u, 1000u}) {
          const std::size_t N = 33;
          const auto w = coded_weights(N, K, 32, sym, sym == Symmetry::asymmetric ? 128.0f : 0.0f, pat.code);
          const auto x = coded_activations(M, K, w.padded, pat.x);
          check_exact(x, w, std::string(pat.name) + (sym == Symmetry::symmetric ? " sym" : " asym") + " M=" +
                                std::to_string(M) + " K=" + std::to_string(K));
        }
}

TEST(W8A8Kernel, Int32LimitAtTheLargestK) {
  // K_pad = kW8MaxPaddedK, one whole-row group, per-token scale: |D| reaches 128·128·K_pad = 2^31 − 2^18 and the
  // vpdpbusd paths' Σ t·x wraps modulo 2^32 before the 128·Σx correction. The results are exact floats.
  const std::size_t K = kW8MaxPaddedK, N = 16;
  for (unsigned code : {0u, 255u, 128u + 127u, 1u})
    for (int xv : {-128, 127}) {
      const auto w = coded_weights(N, K, 0, Symmetry::symmetric, 0.0f, [&](std::size_t, std::size_t) { return code; });
      const auto x = coded_activations(1, K, w.padded, [&](std::size_t, std::size_t) { return xv; });
      const PackedW8 packed = pack_w8(w);
      const double want = (static_cast<double>(code) - 128.0) * xv * static_cast<double>(K);
      for (KernelPath p : test::paths_under_test()) {
        const auto y = run(x, packed, p);
        for (float v : y) ASSERT_EQ(static_cast<double>(v), static_cast<double>(static_cast<float>(want))) << to_string(p) << " code " << code << " x " << xv;
        g_covered.insert(p);
      }
    }
  test::expect_invalid([&] { pack_w8(make_uniform_weights(UniformFormat{8, 16, Symmetry::symmetric, ScaleType::f16}, 1, K + 16)); },
                       "w.cols");
}

TEST(W8A8Kernel, AnyThreadPartitionGivesIdenticalResults) {
  const std::size_t M = 17, N = 200, K = 256;
  const UniformWeights w = random_weights(N, K, UniformFormat{8, 64, Symmetry::asymmetric, ScaleType::f16}, 21);
  const auto xv = test::activations(M, K, 22);
  const auto x = quantize_activations(MatrixView<const float>(xv.data(), M, K), ActivationFormat{}, w.padded);
  const PackedW8 packed = pack_w8(w);
  ThreadPool pool(3);
  const ParallelFor hook = pool.hook();
  const ParallelFor uneven = [](std::size_t count, const std::function<void(std::size_t, std::size_t)>& body) {
    for (std::size_t b = 0; b < count;) {
      const std::size_t e = std::min(count, b + 1 + b % 3);
      body(b, e);
      b = e;
    }
  };
  for (KernelPath p : test::paths_under_test()) {
    const auto serial = run(x, packed, p);
    expect_same_bits(run(x, packed, p, &hook), serial, std::string(to_string(p)) + " pool");
    expect_same_bits(run(x, packed, p, &uneven), serial, std::string(to_string(p)) + " uneven");
    g_covered.insert(p);
  }
}

TEST(W8A8Kernel, ClearErrors) {
  const auto w4 = random_weights(16, 32, UniformFormat{4, 32, Symmetry::symmetric, ScaleType::f16}, 1);
  test::expect_invalid([&] { pack_w8(w4); }, "w.format.bits");
  const auto w = random_weights(16, 40, UniformFormat{8, 32, Symmetry::symmetric, ScaleType::f16}, 2);
  const PackedW8 packed = pack_w8(w);
  const auto xv = test::activations(2, 40, 3);
  std::vector<float> y(2 * 16);
  const auto x_bad = quantize_activations(MatrixView<const float>(xv.data(), 2, 40), ActivationFormat{}, 48);
  test::expect_invalid([&] { w8a8_gemm(x_bad, packed, MatrixView<float>(y.data(), 2, 16)); }, "'x'");
  const auto x = quantize_activations(MatrixView<const float>(xv.data(), 2, 40), ActivationFormat{}, w.padded);
  test::expect_invalid([&] { w8a8_gemm(x, packed, MatrixView<float>(y.data(), 1, 16)); }, "'y'");
  test::expect_invalid([&] { w8a8_gemm(x, PackedW8{}, MatrixView<float>(y.data(), 2, 16)); }, "'w'");
  for (KernelPath p : {KernelPath::avx2, KernelPath::avx_vnni, KernelPath::avx512_vnni, KernelPath::neon, KernelPath::neon_dotprod})
    if (!path_supported(p)) {
      W4A8Options o;
      o.path = p;
      test::expect_invalid([&] { w8a8_gemm(x, packed, MatrixView<float>(y.data(), 2, 16), o); }, "options.path");
    }
}
