// tests/test_lcq.cpp — LCQ rank-k codebooks: RTN equivalence at k = 1, monotone fitting, format invariants,
// serialization, double quantization, the kernel-ready int8 reference matmul, argument checks.
#include <rankq/kernels/codebook_reference.hpp>
#include <rankq/algorithms/lcq.hpp>
#include <rankq/formats/uniform.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "test_util.hpp"

namespace {

using rankq::CodebookFormat;
using rankq::CodebookWeights;
using rankq::LcqOptions;
using rankq::MatrixView;

MatrixView<const float> view(const std::vector<float>& w, std::size_t N, std::size_t K) { return {w.data(), N, K}; }

std::vector<float> channel_weights(std::size_t K, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<float> ln(0.0f, 1.0f);
  std::vector<float> d(K);
  for (auto& v : d) v = ln(rng);
  return d;
}

LcqOptions options(unsigned bits, std::size_t group, unsigned rank, unsigned iterations = 8) {
  LcqOptions o;
  o.bits = bits;
  o.group_size = group;
  o.rank = rank;
  o.max_iterations = iterations;
  o.threads = 2;
  return o;
}

TEST(LcqRank1, ReproducesRtnAsymmetricExactly) {
  struct Shape { std::size_t N, K, group; };
  for (const Shape s : {Shape{8, 64, 32}, Shape{5, 172, 32}, Shape{5, 172, 64}, Shape{5, 172, 128},
                        Shape{5, 172, rankq::kWholeRow}, Shape{3, 100, rankq::kWholeRow}, Shape{4, 256, 128}}) {
    for (unsigned bits : {2u, 3u, 4u}) {
      SCOPED_TRACE("N=" + std::to_string(s.N) + " K=" + std::to_string(s.K) + " g=" + std::to_string(s.group) +
                   " b=" + std::to_string(bits));
      const auto w = test::heavy_tailed(s.N * s.K, 11 + s.K + bits);
      const auto rtn = rankq::quantize_uniform(
          view(w, s.N, s.K), rankq::UniformFormat{bits, s.group, rankq::Symmetry::asymmetric, rankq::ScaleType::f32});
      const CodebookWeights q = rankq::fit_lcq(view(w, s.N, s.K), options(bits, s.group, 1, 0));
      ASSERT_EQ(q.padded, rtn.padded);
      ASSERT_EQ(q.groups, rtn.groups);
      for (unsigned t = 0; t < q.codewords(); ++t) EXPECT_EQ(q.V[t], static_cast<float>(t));
      for (std::size_t n = 0; n < s.N; ++n) {
        for (std::size_t g = 0; g < q.groups; ++g) {
          EXPECT_EQ(q.scale(n, g, 0), rtn.scale(n, g));
          EXPECT_EQ(q.offset(n, g), rtn.offset(n, g));
        }
        for (std::size_t c = 0; c < q.padded; ++c) ASSERT_EQ(q.index(n, c), rtn.code(n, c)) << n << "," << c;
        for (std::size_t c = 0; c < s.K; ++c) ASSERT_EQ(q.value(n, c), rtn.value(n, c)) << n << "," << c;
      }
      EXPECT_EQ(rankq::dequantize(q), rankq::dequantize(rtn));
    }
  }
}

TEST(LcqRank1, RtnInitializationIgnoresChannelWeights) {
  // max_iterations = 0, k = 1 is the RTN starting point whatever D is (D only weights the later steps).
  const std::size_t N = 7, K = 200;
  const auto w = test::heavy_tailed(N * K, 13);
  for (unsigned bits : {2u, 3u, 4u}) {
    const auto rtn = rankq::quantize_uniform(
        view(w, N, K), rankq::UniformFormat{bits, 64, rankq::Symmetry::asymmetric, rankq::ScaleType::f32});
    const CodebookWeights q = rankq::fit_lcq(view(w, N, K), channel_weights(K, 14), options(bits, 64, 1, 0));
    EXPECT_EQ(0, std::memcmp(q.indices.data(), rtn.codes.data(), q.indices.size())) << "bits " << bits;
    EXPECT_EQ(rankq::dequantize(q), rankq::dequantize(rtn)) << "bits " << bits;
  }
}

TEST(LcqFit, ObjectiveNeverIncreasesOverIterationsAndRanks) {
  const std::size_t N = 12, K = 172;
  const auto w = test::heavy_tailed(N * K, 5);
  const auto d = channel_weights(K, 6);
  for (unsigned bits : {2u, 3u, 4u})
    for (std::size_t group : {std::size_t(32), rankq::kWholeRow}) {
      SCOPED_TRACE("b=" + std::to_string(bits) + " g=" + std::to_string(group));
      rankq::LcqReport rep;
      const auto all = rankq::fit_lcq_all_ranks(view(w, N, K), d, options(bits, group, 4, 12), &rep);
      ASSERT_EQ(rep.iteration_objectives.size(), 4u);
      double prev = rep.rtn_objective;
      for (std::size_t r = 0; r < 4; ++r) {
        const auto& h = rep.iteration_objectives[r];
        ASSERT_GE(h.size(), 2u);
        EXPECT_LE(h.front(), prev);  // rank k starts exactly where rank k−1 ended
        for (std::size_t i = 1; i < h.size(); ++i) EXPECT_LE(h[i], h[i - 1]) << "rank " << r + 1 << " iteration " << i;
        EXPECT_EQ(rep.rank_objectives[r], h.back());
        prev = h.back();
        // the recorded objective is the objective of the returned weights
        EXPECT_NEAR(rankq::lcq_objective(all[r], view(w, N, K), d), h.back(), 1e-9 * h.back());
      }
      EXPECT_LT(rep.rank_objectives[0], rep.rtn_objective);
      for (std::size_t r = 1; r < 4; ++r) EXPECT_LE(rep.rank_objectives[r], rep.rank_objectives[r - 1]);
      EXPECT_LT(rep.rank_objectives[1], rep.rank_objectives[0]);
    }
}

TEST(LcqFit, FinalErrorNonIncreasingInRankAndChainMatchesSingleFit) {
  const std::size_t N = 16, K = 128;
  const auto w = test::heavy_tailed(N * K, 21);
  const auto d = channel_weights(K, 22);
  for (unsigned bits : {2u, 3u, 4u}) {
    const auto all = rankq::fit_lcq_all_ranks(view(w, N, K), d, options(bits, 32, 4));
    double prev = std::numeric_limits<double>::infinity();
    for (unsigned k = 1; k <= 4; ++k) {
      const double f = rankq::lcq_objective(all[k - 1], view(w, N, K), d);
      EXPECT_LE(f, prev) << "bits " << bits << " rank " << k;
      prev = f;
      const CodebookWeights single = rankq::fit_lcq(view(w, N, K), d, options(bits, 32, k));
      EXPECT_EQ(single.S, all[k - 1].S);
      EXPECT_EQ(single.V, all[k - 1].V);
      EXPECT_EQ(rankq::dequantize(single), rankq::dequantize(all[k - 1]));
    }
  }
}

TEST(LcqFit, IdenticalForAnyThreadCount) {
  const std::size_t N = 64, K = 256;
  const auto w = test::heavy_tailed(N * K, 31);
  const auto d = channel_weights(K, 32);
  auto o = options(3, 32, 3);
  o.threads = 1;
  const CodebookWeights a = rankq::fit_lcq(view(w, N, K), d, o);
  o.threads = 3;
  const CodebookWeights b = rankq::fit_lcq(view(w, N, K), d, o);
  EXPECT_EQ(a.S, b.S);
  EXPECT_EQ(a.B, b.B);
  EXPECT_EQ(a.V, b.V);
  EXPECT_EQ(0, std::memcmp(a.indices.data(), b.indices.data(), a.indices.size()));
}

/// Every value is a codeword of its own group, indices are in range, padding is 0, and every index is a
/// nearest codeword (the fit ends with an assignment step).
void expect_codebook_invariants(const CodebookWeights& q, const std::vector<float>& w) {
  const std::size_t T = q.codewords();
  for (std::size_t n = 0; n < q.rows; ++n)
    for (std::size_t c = 0; c < q.padded; ++c) {
      const unsigned t = q.index(n, c);
      ASSERT_LT(t, T);
      if (c >= q.cols) {
        ASSERT_EQ(t, 0u);
        continue;
      }
      const std::size_t g = c / q.group;
      const float v = q.value(n, c);
      bool member = false;
      double nearest = std::numeric_limits<double>::infinity();
      for (unsigned u = 0; u < T; ++u) {
        member = member || q.codeword(n, g, u) == v;
        const double e = static_cast<double>(w[n * q.cols + c]) - q.codeword(n, g, u);
        nearest = std::min(nearest, e * e);
      }
      ASSERT_TRUE(member);
      const double e = static_cast<double>(w[n * q.cols + c]) - v;
      ASSERT_LE(e * e, nearest);
    }
}

TEST(LcqFormat, ValuesAreMembersOfTheirGroupsCodebookRow) {
  const std::size_t N = 6, K = 172;
  const auto w = test::heavy_tailed(N * K, 41);
  for (unsigned bits : {2u, 3u, 4u})
    for (std::size_t group : {std::size_t(32), std::size_t(64), std::size_t(128), rankq::kWholeRow})
      for (bool dq : {false, true}) {
        auto o = options(bits, group, 3, 4);
        o.double_quantize = dq;
        const CodebookWeights q = rankq::fit_lcq(view(w, N, K), channel_weights(K, 42), o);
        expect_codebook_invariants(q, w);
      }
}

TEST(LcqDoubleQuantization, ValuesUseTheEightBitNumbers) {
  const std::size_t N = 24, K = 256;
  const auto w = test::heavy_tailed(N * K, 51);
  const auto d = channel_weights(K, 52);
  for (unsigned bits : {2u, 3u, 4u}) {
    auto o = options(bits, 64, 2);
    rankq::LcqReport plain_report, dq_report;
    const CodebookWeights plain = rankq::fit_lcq(view(w, N, K), d, o, &plain_report);
    o.double_quantize = true;
    const CodebookWeights q = rankq::fit_lcq(view(w, N, K), d, o, &dq_report);
    ASSERT_TRUE(q.format.double_quantized);
    const unsigned k = q.format.rank;
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t g = 0; g < q.groups; ++g) {
        const std::size_t i = n * q.groups + g;
        for (unsigned r = 0; r < k; ++r) {
          ASSERT_NE(q.S_q[i * k + r], -128);
          ASSERT_EQ(q.S[i * k + r], static_cast<float>(q.S_q[i * k + r]) * q.S_scale[n * k + r]);
        }
        ASSERT_NE(q.B_q[i], -128);
        ASSERT_EQ(q.B[i], static_cast<float>(q.B_q[i]) * q.B_scale[n]);
      }
    EXPECT_DOUBLE_EQ(dq_report.final_objective, rankq::lcq_objective(q, view(w, N, K), d));
    // 8-bit S and B cost little accuracy: within 25% of the float fit's objective at any bit width here
    EXPECT_LT(dq_report.final_objective, 1.25 * plain_report.final_objective) << "bits " << bits;
    EXPECT_LT(rankq::codebook_storage(q).bits_per_weight, rankq::codebook_storage(plain).bits_per_weight);
  }
}

void expect_same(const CodebookWeights& a, const CodebookWeights& b) {
  EXPECT_EQ(a.format.bits, b.format.bits);
  EXPECT_EQ(a.format.group_size, b.format.group_size);
  EXPECT_EQ(a.format.rank, b.format.rank);
  EXPECT_EQ(a.format.double_quantized, b.format.double_quantized);
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.cols, b.cols);
  ASSERT_EQ(a.indices.size(), b.indices.size());
  EXPECT_EQ(0, std::memcmp(a.indices.data(), b.indices.data(), a.indices.size()));
  EXPECT_EQ(a.V, b.V);
  EXPECT_EQ(a.S, b.S);
  EXPECT_EQ(a.B, b.B);
  EXPECT_EQ(a.S_q, b.S_q);
  EXPECT_EQ(a.S_scale, b.S_scale);
  EXPECT_EQ(a.B_q, b.B_q);
  EXPECT_EQ(a.B_scale, b.B_scale);
  EXPECT_EQ(rankq::dequantize(a), rankq::dequantize(b));
}

TEST(LcqSerialization, SizeEqualsStorageAccountingAndRoundTrips) {
  for (unsigned bits : {2u, 3u, 4u})
    for (std::size_t group : {std::size_t(32), std::size_t(128), rankq::kWholeRow})
      for (bool dq : {false, true}) {
        const std::size_t N = 5, K = 172;
        const auto w = test::heavy_tailed(N * K, 61 + bits);
        auto o = options(bits, group, 3, 3);
        o.double_quantize = dq;
        const CodebookWeights q = rankq::fit_lcq(view(w, N, K), o);
        const auto bytes = rankq::serialize(q);
        const rankq::CodebookStorage st = rankq::codebook_storage(q);
        ASSERT_EQ(bytes.size(), st.total_bytes);
        EXPECT_EQ(st.total_bytes, st.header_bytes + st.codebook_bytes + st.index_bytes + st.scale_bytes +
                                      st.offset_bytes + st.dq_scale_bytes);
        EXPECT_DOUBLE_EQ(st.bits_per_weight, 8.0 * static_cast<double>(bytes.size() - 32) / (N * K));
        expect_same(rankq::deserialize_codebook(bytes), q);
      }
}

TEST(LcqSerialization, StorageAccountingByHand) {
  // 4096 x 4096, 4 bits, g = 128, k = 2: indices 4 bits, S 2·32 and B 32 bits per 128 weights, V 2·16 floats
  const rankq::CodebookStorage f = rankq::codebook_storage(CodebookFormat{4, 128, 2, false}, 4096, 4096);
  EXPECT_EQ(f.index_bytes, 4096u * 2048u);
  EXPECT_EQ(f.scale_bytes, 4096u * 32u * 2u * 4u);
  EXPECT_EQ(f.offset_bytes, 4096u * 32u * 4u);
  EXPECT_EQ(f.codebook_bytes, 2u * 16u * 4u);
  EXPECT_NEAR(f.bits_per_weight, 4.0 + 96.0 / 128.0 + 1024.0 / (4096.0 * 4096.0), 1e-12);
  const rankq::CodebookStorage d = rankq::codebook_storage(CodebookFormat{4, 128, 2, true}, 4096, 4096);
  EXPECT_NEAR(d.bits_per_weight, 4.0 + 24.0 / 128.0 + (1024.0 + 4096.0 * 3 * 32) / (4096.0 * 4096.0), 1e-12);
  // K = 172, g = 32 pads to 192; 3-bit indices: 72 bytes per row
  const rankq::CodebookStorage p = rankq::codebook_storage(CodebookFormat{3, 32, 1, false}, 2, 172);
  EXPECT_EQ(p.index_bytes, 2u * 72u);
}

TEST(LcqSerialization, MalformedInputIsAFormatError) {
  const std::size_t N = 3, K = 100;
  const auto w = test::heavy_tailed(N * K, 71);
  auto o = options(3, 32, 2, 2);
  o.double_quantize = true;
  const auto good = rankq::serialize(rankq::fit_lcq(view(w, N, K), o));
  auto expect_bad = [&](std::vector<std::uint8_t> bytes, const char* needle) {
    try {
      rankq::deserialize_codebook(bytes);
      ADD_FAILURE() << "accepted: " << needle;
    } catch (const rankq::format_error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_bad({}, "truncated");
  expect_bad(std::vector<std::uint8_t>(good.begin(), good.end() - 1), "size is");
  auto longer = good;
  longer.push_back(0);
  expect_bad(longer, "size is");
  auto patch = [&](std::size_t at, std::uint8_t v) {
    auto b = good;
    b[at] = v;
    return b;
  };
  expect_bad(patch(0, 'X'), "bad magic");
  expect_bad(patch(4, 2), "unsupported version");
  expect_bad(patch(6, 5), "header.bits");
  expect_bad(patch(7, 0), "header.rank");
  expect_bad(patch(7, 9), "header.rank");
  expect_bad(patch(8, 48), "header.group_size");
  expect_bad(patch(12, 2), "unknown flags");
  expect_bad(patch(13, 1), "reserved");
  expect_bad(patch(16, 4), "size is");
  const std::size_t v_end = 32 + 2 * 8 * 4;
  auto nan_v = good;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(nan_v.data() + 32, &nan, 4);  // V[0] (little-endian host)
  expect_bad(nan_v, "V has a non-finite");
  // K = 100 pads to 128 (g = 32): the last index of row 0 lives in the padding and must be 0
  const std::size_t row_bytes = 128 * 3 / 8;
  expect_bad(patch(v_end + row_bytes - 1, 0xE0), "padded column");
  // S_q starts after indices and the N·(k+1) float scales
  const std::size_t sq = v_end + N * row_bytes + N * 3 * 4;
  expect_bad(patch(sq, 0x80), "S_q holds -128");
  EXPECT_NO_THROW(rankq::deserialize_codebook(good));
}

TEST(LcqArguments, BadInputNamesTheArgument) {
  const std::size_t N = 4, K = 64;
  auto w = test::heavy_tailed(N * K, 81);
  const auto W = view(w, N, K);
  test::expect_invalid([&] { rankq::fit_lcq(W, options(1, 32, 1)); }, "'options.bits'");
  test::expect_invalid([&] { rankq::fit_lcq(W, options(5, 32, 1)); }, "'options.bits'");
  test::expect_invalid([&] { rankq::fit_lcq(W, options(4, 32, 0)); }, "'options.rank'");
  test::expect_invalid([&] { rankq::fit_lcq(W, options(4, 32, 9)); }, "'options.rank'");
  test::expect_invalid([&] { rankq::fit_lcq(W, options(4, 16, 1)); }, "'options.group_size'");
  test::expect_invalid([&] { rankq::fit_lcq(W, options(4, 48, 1)); }, "'options.group_size'");
  auto bad_tol = options(4, 32, 1);
  bad_tol.tolerance = -1;
  test::expect_invalid([&] { rankq::fit_lcq(W, bad_tol); }, "'options.tolerance'");
  test::expect_invalid([&] { rankq::fit_lcq(W, std::vector<float>(K - 1, 1.0f), options(4, 32, 1)); }, "'channel_weights'");
  for (float bad : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    std::vector<float> d(K, 1.0f);
    d[7] = bad;
    test::expect_invalid([&] { rankq::fit_lcq(W, d, options(4, 32, 2)); }, "'channel_weights'");
  }
  test::expect_invalid([&] { rankq::fit_lcq(MatrixView<const float>(w.data(), 0, K), options(4, 32, 1)); }, "'weights'");
  w[5] = std::numeric_limits<float>::quiet_NaN();
  test::expect_invalid([&] { rankq::fit_lcq(W, options(4, 32, 1)); }, "'weights'");
  test::expect_invalid([&] { rankq::make_codebook_weights(CodebookFormat{4, 32, 0, false}, 2, 2); }, "'format.rank'");
  test::expect_invalid([&] { rankq::codebook_storage(CodebookFormat{6, 32, 1, false}, 2, 2); }, "'format.bits'");
}

TEST(LcqArguments, NonFiniteWeightsAndShapeMismatchesNameTheArgument) {
  const std::size_t N = 4, K = 64;
  auto w = test::heavy_tailed(N * K, 83);
  const CodebookWeights q = rankq::fit_lcq(view(w, N, K), options(4, 32, 2, 2));
  const auto other = test::heavy_tailed((N + 1) * K, 84);
  test::expect_invalid([&] { rankq::lcq_objective(q, view(other, N + 1, K)); }, "'weights'");
  test::expect_invalid([&] { rankq::lcq_objective(q, view(w, N, K), std::vector<float>(K + 1, 1.0f)); }, "'channel_weights'");
  CodebookWeights copy = q;
  test::expect_invalid([&] { rankq::double_quantize(copy, view(other, N + 1, K)); }, "'weights'");
  std::vector<float> out(N * K);
  test::expect_invalid([&] { rankq::dequantize(q, MatrixView<float>(out.data(), N, K - 1)); }, "'out'");
  test::expect_invalid([&] { rankq::make_codebook_weights(CodebookFormat{4, 32, 2, false}, 0, K); }, "'rows'");
  test::expect_invalid([&] { rankq::codebook_storage(CodebookFormat{4, 32, 2, false}, N, 0); }, "'K'");
  for (float bad : {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {
    auto wb = w;
    wb[N * K - 1] = bad;
    test::expect_invalid([&] { rankq::fit_lcq(view(wb, N, K), options(4, 32, 2)); }, "'weights'");
  }
}

}  // namespace

template <typename E>
void expect_lcq_element_view_equals_float_path() {
  const auto m = test::element_matrix<E>(6, 100, 31, 112);  // K = 100: the last group of 32/64 is short; strided
  std::vector<float> d(100);
  for (std::size_t k = 0; k < d.size(); ++k) d[k] = 0.25f + static_cast<float>(k % 5);
  LcqOptions o;
  o.bits = 3;
  o.group_size = 32;
  o.rank = 2;
  o.max_iterations = 4;
  o.threads = 1;
  rankq::LcqReport ra, rb;
  expect_same(rankq::fit_lcq(m.view(), d, o, &ra), rankq::fit_lcq(m.float_view(), d, o, &rb));
  EXPECT_EQ(ra.rank_objectives, rb.rank_objectives);
  expect_same(rankq::fit_lcq(m.view(), o), rankq::fit_lcq(m.float_view(), o));
  const auto all_a = rankq::fit_lcq_all_ranks(m.view(), d, o), all_b = rankq::fit_lcq_all_ranks(m.float_view(), d, o);
  ASSERT_EQ(all_a.size(), all_b.size());
  for (std::size_t i = 0; i < all_a.size(); ++i) expect_same(all_a[i], all_b[i]);
  EXPECT_EQ(rankq::lcq_objective(all_a[0], m.view(), d), rankq::lcq_objective(all_a[0], m.float_view(), d));
  CodebookWeights qa = all_a[1], qb = all_a[1];
  rankq::double_quantize(qa, m.view(), d);
  rankq::double_quantize(qb, m.float_view(), d);
  expect_same(qa, qb);
  o.double_quantize = true;
  o.group_size = 64;
  expect_same(rankq::fit_lcq(m.view(), d, o), rankq::fit_lcq(m.float_view(), d, o));
}

TEST(LcqFit, Bf16AndF16ViewsGiveTheFloatResultBitForBit) {
  expect_lcq_element_view_equals_float_path<rankq::bf16_t>();
  expect_lcq_element_view_equals_float_path<rankq::f16_t>();
  test::expect_invalid([] { rankq::fit_lcq(MatrixView<const rankq::bf16_t>(nullptr, 2, 3), LcqOptions{}); }, "null pointer");
}
