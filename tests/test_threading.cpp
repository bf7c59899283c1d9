// Tests for rankq/kernels/threading.hpp: the pool covers every index exactly once, propagates exceptions, is reusable.
#include <rankq/kernels/threading.hpp>

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

// A thread that cannot start (here: no address space left for its stack) is an exception with a clear message,
// never std::terminate. Run in a child process whose address space is limited; skipped under AddressSanitizer,
// whose shadow memory does not fit such a limit.
#if !defined(__SANITIZE_ADDRESS__)
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

TEST(ThreadPool, FailedThreadStartIsAnException) {
  // qemu-user keeps the guest's threads inside its own address-space reservation: the guest's RLIMIT_AS does not
  // stop them, so the limit this test relies on cannot be made. The emulated runs set RANKQ_TEST_EMULATOR.
  if (const char* emulator = std::getenv("RANKQ_TEST_EMULATOR"); emulator && *emulator)
    GTEST_SKIP() << "RLIMIT_AS does not limit thread stacks under " << emulator;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::alarm(60);  // a pool that hangs instead of throwing fails the test (SIGALRM) rather than blocking it
    long pages = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
      if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
      std::fclose(f);
    }
    const rlim_t limit = static_cast<rlim_t>(pages) * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE)) + (64u << 20);
    const rlimit r{limit, limit};
    if (pages == 0 || ::setrlimit(RLIMIT_AS, &r) != 0) std::_Exit(3);
    try {
      ThreadPool pool(200);  // 200 stacks of 8 MiB do not fit in 64 MiB
      std::_Exit(2);
    } catch (const std::runtime_error& e) {
      std::_Exit(std::string(e.what()).find("rankq::ThreadPool: cannot start 200 threads") == 0 ? 0 : 4);
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "2: all threads started; 3: no limit; 4: wrong message";
}
#endif
