// Tests for rankq/threading.hpp: the pool covers every index exactly once, propagates exceptions, is reusable.
#include <rankq/threading.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace rankq;

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
  for (std::size_t threads : {1u, 2u, 3u, 8u}) {
    ThreadPool pool(threads);
    for (std::size_t n : {0u, 1u, 2u, 7u, 1000u}) {
      std::vector<std::atomic<int>> hits(n);
      pool.parallel_for(n, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) hits[i]++;
      });
      for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << threads << " threads, n=" << n;
    }
  }
}

TEST(ThreadPool, RethrowsAndStaysUsable) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for(10, [](std::size_t b, std::size_t) {
    if (b == 0) throw std::runtime_error("boom");
  }), std::runtime_error);
  std::atomic<int> sum{0};
  ParallelFor hook = pool.hook();
  for (int rep = 0; rep < 200; ++rep) hook(4, [&](std::size_t b, std::size_t e) { sum += static_cast<int>(e - b); });
  EXPECT_EQ(sum.load(), 800);
}

// An engine that runs layers as pool tasks calls the kernels' hook from inside a task: the inner call must run
// (inline, on the task's thread) instead of waiting for the busy pool. Before the fix this deadlocked.
TEST(ThreadPool, NestedCallFromATaskRunsInline) {
  for (std::size_t threads : {2u, 3u}) {
    ThreadPool pool(threads);
    ParallelFor hook = pool.hook();
    std::vector<std::atomic<int>> hits(6 * 100);
    pool.parallel_for(6, [&](std::size_t b, std::size_t e) {
      for (std::size_t outer = b; outer < e; ++outer)
        hook(100, [&](std::size_t ib, std::size_t ie) {
          for (std::size_t i = ib; i < ie; ++i) hits[outer * 100 + i]++;
        });
    });
    for (std::size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i].load(), 1) << threads << " threads, i=" << i;
    // The pool still parallelises ordinary calls afterwards.
    std::atomic<int> sum{0};
    hook(10, [&](std::size_t b, std::size_t e) { sum += static_cast<int>(e - b); });
    EXPECT_EQ(sum.load(), 10);
  }
}

// A task of one pool may use another pool in parallel: only re-entry into the same pool runs inline.
TEST(ThreadPool, TaskMayUseAnotherPool) {
  ThreadPool outer(2), inner(2);
  std::atomic<int> sum{0};
  outer.parallel_for(2, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i)
      inner.parallel_for(50, [&](std::size_t ib, std::size_t ie) { sum += static_cast<int>(ie - ib); });
  });
  EXPECT_EQ(sum.load(), 100);
}

// Calls from several threads at once take turns and each covers its range.
TEST(ThreadPool, ConcurrentCallersTakeTurns) {
  ThreadPool pool(2);
  std::atomic<int> sum{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t)
    callers.emplace_back([&] {
      for (int rep = 0; rep < 50; ++rep)
        pool.parallel_for(8, [&](std::size_t b, std::size_t e) { sum += static_cast<int>(e - b); });
    });
  for (auto& c : callers) c.join();
  EXPECT_EQ(sum.load(), 3 * 50 * 8);
}
