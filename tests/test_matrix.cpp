// Tests for rankq/formats/matrix.hpp: views with strides, const conversion, aligned buffers; and the quantizers' scratch
// buffer (rankq/detail/scratch_buffer.hpp).
#include <rankq/formats/matrix.hpp>
#include <rankq/detail/scratch_buffer.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <new>
#include <utility>
#include <vector>

#include "test_util.hpp"

using namespace rankq;

TEST(Matrix, ViewIndexingAndStride) {
  std::vector<float> d(3 * 5);
  for (std::size_t i = 0; i < d.size(); ++i) d[i] = static_cast<float>(i);
  MatrixView<float> v(d.data(), 3, 4, 5);
  EXPECT_EQ(v(2, 3), 13.0f);
  EXPECT_EQ(v.row(1)[0], 5.0f);
  MatrixView<const float> c = v;
  EXPECT_EQ(c(1, 1), 6.0f);
  EXPECT_FALSE(c.empty());
}

TEST(Matrix, CheckViewNamesTheArgument) {
  std::vector<float> d(4);
  test::expect_invalid([&] { detail::check_view(MatrixView<const float>(d.data(), 0, 4), "f", "xs"); }, "'xs'");
  test::expect_invalid([&] { detail::check_view(MatrixView<const float>(d.data(), 2, 2, 1), "f", "xs"); }, "stride");
  test::expect_invalid([&] { detail::check_view(MatrixView<const float>(nullptr, 2, 2), "f", "xs"); }, "null");
}

TEST(Matrix, AlignedBufferIsAlignedZeroedAndCopyable) {
  for (std::size_t n : {1u, 3u, 64u, 1000u}) {
    AlignedBuffer<std::int8_t> b(n);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % kBufferAlignment, 0u);
    for (auto v : b) EXPECT_EQ(v, 0);
    b[n - 1] = 7;
    AlignedBuffer<std::int8_t> c = b;
    EXPECT_EQ(c[n - 1], 7);
    AlignedBuffer<std::int8_t> m = std::move(c);
    EXPECT_EQ(m.size(), n);
    EXPECT_EQ(c.size(), 0u);
  }
  AlignedBuffer<float> e;
  EXPECT_TRUE(e.empty());
  EXPECT_THROW(AlignedBuffer<double>(SIZE_MAX / 2), std::bad_alloc);
}

TEST(Matrix, ScratchBufferAlignsLargeArraysToHugePagesAndMoves) {
  using detail::ScratchBuffer;
  ScratchBuffer<float> small(1000), large((std::size_t(8) << 20) / sizeof(float) + 3), none(0);
  EXPECT_EQ(none.data(), nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(small.data()) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(large.data()) % ScratchBuffer<float>::kHugePage, 0u);
  for (std::size_t i = 0; i < large.size(); ++i) large.data()[i] = static_cast<float>(i % 977);  // every page usable
  ScratchBuffer<float> moved(std::move(large));
  EXPECT_EQ(moved.size(), (std::size_t(8) << 20) / sizeof(float) + 3);
  EXPECT_EQ(moved.data()[moved.size() - 1], static_cast<float>((moved.size() - 1) % 977));
  EXPECT_EQ(large.data(), nullptr);
  EXPECT_THROW(ScratchBuffer<double>(SIZE_MAX / 4), std::bad_alloc);
}
