// Tests for the zero-copy side of rankq/layers/linear.hpp (Linear::from_packed*): a layer whose packed data lies in a
// mapped file gives bit-identical forward results to one that packed the same weights, copies nothing (its data
// pointers lie inside the mapping, owned_bytes() excludes them), keeps the mapping alive, and refuses bad headers.
#include <rankq/io/file.hpp>
#include <rankq/algorithms/lcq.hpp>
#include <rankq/layers/linear.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace rankq;

namespace {

constexpr std::size_t N = 37, K = 144;

/// A fresh directory for this test's files, removed at scope exit.
struct TempDir {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("rankq_test_linear_view_" + std::to_string(::getpid()) + "_" +
                               ::testing::UnitTest::GetInstance()->current_test_info()->name());
  TempDir() { std::filesystem::create_directories(dir); }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

UniformWeights uniform(unsigned bits, std::size_t group, Symmetry sym, ScaleType st, std::uint64_t seed) {
  const auto w = test::heavy_tailed(N * K, seed);
  return quantize_uniform(MatrixView<const float>(w.data(), N, K), UniformFormat{bits, group, sym, st});
}

UniformWeights factor(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  const auto a = test::heavy_tailed(rows * cols, seed, 0.5f);
  return to_uniform(quantize_mxint(MatrixView<const float>(a.data(), rows, cols), MxFormat{8, 16, MxSemantics::lqer}));
}

/// Writes the buffers one after another, each at a multiple of 64 bytes after a 64-byte preamble, maps the file
/// and returns views of them (in order) plus the mapping as the keep-alive handle.
struct Mapped {
  std::shared_ptr<io::MappedFile> file;
  std::vector<AlignedBuffer<std::uint8_t>> views;
};
Mapped map_buffers(const std::string& path, const std::vector<const AlignedBuffer<std::uint8_t>*>& buffers) {
  std::vector<std::uint8_t> bytes(64, 0xAB);
  std::vector<std::size_t> offsets;
  for (const auto* b : buffers) {
    offsets.push_back(bytes.size());
    bytes.insert(bytes.end(), b->begin(), b->end());
    bytes.resize((bytes.size() + 63) / 64 * 64, 0);
  }
  io::write_file_atomic(path, bytes);
  Mapped m{std::make_shared<io::MappedFile>(path), {}};
  for (std::size_t i = 0; i < buffers.size(); ++i)
    m.views.push_back(AlignedBuffer<std::uint8_t>::borrow(m.file->data() + offsets[i], buffers[i]->size()));
  return m;
}

bool inside(const Mapped& m, const AlignedBuffer<std::uint8_t>& b) {
  return b.data() >= m.file->data() && b.data() + b.size() <= m.file->data() + m.file->size();
}

void expect_same_forward(const Linear& a, const Linear& b, const std::string& what) {
  Context ctx;
  for (std::size_t M : {1u, 5u}) {
    const auto xv = test::activations(M, K, 7 + M);
    std::vector<float> ya(M * N, -1.0f), yb(M * N, -2.0f);
    a.forward(MatrixView<const float>(xv.data(), M, K), MatrixView<float>(ya.data(), M, N), ctx);
    b.forward(MatrixView<const float>(xv.data(), M, K), MatrixView<float>(yb.data(), M, N), ctx);
    ASSERT_EQ(0, std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(float))) << what << " M=" << M;
  }
}

}  // namespace

TEST(LinearView, W4A8FromAMappedFileIsBitIdenticalAndCopiesNothing) {
  TempDir dir;
  for (const auto& q : {uniform(4, 32, Symmetry::symmetric, ScaleType::f16, 1), uniform(3, 0, Symmetry::asymmetric, ScaleType::f32, 2)}) {
    const Linear packed = Linear::from_uniform(q);
    Mapped m = map_buffers(dir.path("w4.bin"), {&packed.packed_w4().data});
    PackedW4 view = packed.packed_w4();  // header fields; the data is replaced by the view below
    view.data = std::move(m.views[0]);
    const std::uint8_t* mapped_data = view.data.data();
    const Linear viewed = Linear::from_packed(std::move(view), {}, m.file);
    EXPECT_EQ(viewed.packed_w4().data.data(), mapped_data);
    EXPECT_TRUE(inside(m, viewed.packed_w4().data));
    EXPECT_FALSE(viewed.packed_w4().data.owns_data());
    EXPECT_EQ(viewed.size_bytes(), packed.size_bytes());
    EXPECT_EQ(viewed.owned_bytes(), 0u);
    EXPECT_EQ(packed.owned_bytes(), packed.size_bytes());
    const std::weak_ptr<io::MappedFile> weak = m.file;
    m.file.reset();  // the layer's keep-alive handle is now the only owner of the mapping
    EXPECT_FALSE(weak.expired());
    expect_same_forward(viewed, packed, "w4a8");
  }
}

TEST(LinearView, LqerAndCodebookFromAMappedFileAreBitIdentical) {
  TempDir dir;
  const auto q = uniform(4, 16, Symmetry::symmetric, ScaleType::f32, 3);
  LowRankCorrection c;
  c.rank = 5, c.out_features = N, c.in_features = K;
  c.a_t = factor(5, K, 4), c.b_t = factor(N, 5, 5);
  const Linear lqer = Linear::from_lqer(q, c);
  const auto wv = test::heavy_tailed(N * K, 6);
  LcqOptions lo;
  lo.bits = 3, lo.group_size = 32, lo.rank = 2, lo.max_iterations = 2, lo.threads = 1;
  const Linear cb = Linear::from_codebook(fit_lcq(MatrixView<const float>(wv.data(), N, K), lo));
  Mapped m = map_buffers(dir.path("packed.bin"), {&lqer.packed_w4().data, &lqer.packed_lowrank().a_t.data,
                                                  &lqer.packed_lowrank().b_t.data, &cb.packed_codebook().data});
  PackedW4 w = lqer.packed_w4();
  PackedLowRank lr = lqer.packed_lowrank();
  PackedCodebook pc = cb.packed_codebook();
  w.data = std::move(m.views[0]), lr.a_t.data = std::move(m.views[1]), lr.b_t.data = std::move(m.views[2]);
  pc.data = std::move(m.views[3]);
  const Linear lqer_view = Linear::from_packed_lqer(std::move(w), std::move(lr), {}, m.file);
  const Linear cb_view = Linear::from_packed_codebook(std::move(pc), {}, m.file);
  EXPECT_TRUE(inside(m, lqer_view.packed_lowrank().b_t.data));
  EXPECT_TRUE(inside(m, cb_view.packed_codebook().data));
  EXPECT_EQ(lqer_view.owned_bytes(), 0u);
  EXPECT_EQ(cb_view.owned_bytes(), cb.packed_codebook().lut.size());  // the 16-byte tables per rank are copied
  expect_same_forward(lqer_view, lqer, "lqer");
  expect_same_forward(cb_view, cb, "codebook");
}

TEST(LinearView, W8A8FromAMappedFileIsBitIdenticalAndCopiesNothing) {
  TempDir dir;
  for (const auto& q : {uniform(8, 32, Symmetry::symmetric, ScaleType::f16, 11), uniform(8, 0, Symmetry::asymmetric, ScaleType::f32, 12)}) {
    const Linear packed = Linear::from_uniform(q);
    ASSERT_EQ(packed.kind(), LinearKind::w8a8);
    Mapped m = map_buffers(dir.path("w8.bin"), {&packed.packed_w8().data});
    PackedW8 view = packed.packed_w8();
    view.data = std::move(m.views[0]);
    const Linear viewed = Linear::from_packed_w8(std::move(view), {}, m.file);
    EXPECT_TRUE(inside(m, viewed.packed_w8().data));
    EXPECT_EQ(viewed.owned_bytes(), 0u);
    EXPECT_EQ(viewed.size_bytes(), packed.size_bytes());
    EXPECT_EQ(packed.owned_bytes(), packed.size_bytes());
    expect_same_forward(viewed, packed, "w8a8");
  }
  const Linear packed = Linear::from_uniform(uniform(8, 32, Symmetry::symmetric, ScaleType::f16, 13));
  PackedW8 p = packed.packed_w8();
  p.data.resize(p.data.size() - 64);
  test::expect_invalid([&] { (void)Linear::from_packed_w8(p); }, "bytes");
  p = packed.packed_w8();
  p.geo.has_offsets = true;
  test::expect_invalid([&] { (void)Linear::from_packed_w8(p); }, "geometry");
  p = packed.packed_w8();
  const std::uint16_t inf = 0x7C00;  // f16 +inf as the first scale of tile 0, group 0
  std::memcpy(p.data.data(), &inf, 2);
  test::expect_invalid([&] { (void)Linear::from_packed_w8(p); }, "non-finite");
}

TEST(LinearView, BadHeadersAndDataAreRefused) {
  const Linear packed = Linear::from_uniform(uniform(4, 32, Symmetry::symmetric, ScaleType::f16, 9));
  PackedW4 p = packed.packed_w4();
  p.tiles += 1;
  test::expect_invalid([&] { (void)Linear::from_packed(p); }, "tile count");
  p = packed.packed_w4();
  p.data.resize(p.data.size() - 64);
  test::expect_invalid([&] { (void)Linear::from_packed(p); }, "bytes");
  p = packed.packed_w4();
  p.geo.scale_bytes = 4;
  test::expect_invalid([&] { (void)Linear::from_packed(p); }, "geometry");
  p = packed.packed_w4();
  const std::uint16_t inf = 0x7C00;  // f16 +inf as the first scale of tile 0, group 0
  std::memcpy(p.data.data() + p.geo.code_bytes(), &inf, 2);
  test::expect_invalid([&] { (void)Linear::from_packed(p); }, "non-finite");
  std::vector<std::uint8_t> misaligned(128);
  test::expect_invalid([&] { (void)AlignedBuffer<std::uint8_t>::borrow(misaligned.data() + 1, 64); }, "64-byte aligned");
}
