// rankq/kernels/threading.hpp — the parallel-for hook kernels take (so an engine can use its own thread pool) and a
// small default pool on std::thread. No OpenMP.
#pragma once

#include "rankq/detail/abi.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

RANKQ_NAMESPACE_BEGIN

/// Runs body(begin, end) over a partition of [0, count) — possibly concurrently — and returns when all
/// calls have finished. Kernels write disjoint outputs per index, so any partition gives identical results.
using ParallelFor = std::function<void(std::size_t count, const std::function<void(std::size_t, std::size_t)>& body)>;

/// A fixed-size pool of std::threads; the calling thread takes part in the work.
class ThreadPool {
 public:
  /// Throws std::runtime_error naming the thread count if the system cannot start a thread (the ones already
  /// started are stopped and joined first).
  explicit ThreadPool(std::size_t threads = std::max(1u, std::thread::hardware_concurrency())) : size_(std::max<std::size_t>(1, threads)) {
    try {
      for (std::size_t i = 1; i < size_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
    } catch (const std::exception& e) {
      const std::string started = std::to_string(workers_.size() + 1);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
      }
      wake_.notify_all();
      for (auto& t : workers_) t.join();
      throw std::runtime_error("rankq::ThreadPool: cannot start " + std::to_string(size_) + " threads (" + started +
                               " started): " + e.what());
    }
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  std::size_t size() const { return size_; }

  /// Splits [0, count) into size() contiguous chunks, one per thread; rethrows the first exception.
  /// Calls from several threads take turns. A call made from inside a body running on this pool (a layer
  /// that parallelises within a task the engine already runs on the pool) runs its whole range inline on
  /// the calling thread: the pool's threads are busy with the outer call, and waiting for them would deadlock.
  void parallel_for(std::size_t count, const std::function<void(std::size_t, std::size_t)>& body) {
    if (count == 0) return;
    if (size_ == 1 || count == 1 || running_on_this_pool()) {
      body(0, count);
      return;
    }
    std::unique_lock<std::mutex> call_lock(call_mutex_);  // one parallel_for at a time
    {
      std::lock_guard<std::mutex> lock(mutex_);
      body_ = &body;
      count_ = count;
      pending_ = size_ - 1;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    run_chunk(0, body);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    body_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

  /// This pool as the kernels' hook.
  ParallelFor hook() {
    return [this](std::size_t n, const std::function<void(std::size_t, std::size_t)>& body) { parallel_for(n, body); };
  }

 private:
  /// The pool whose body the current thread is executing (null outside any body).
  static const ThreadPool*& current_pool() {
    thread_local const ThreadPool* pool = nullptr;
    return pool;
  }
  bool running_on_this_pool() const { return current_pool() == this; }

  void run_chunk(std::size_t i, const std::function<void(std::size_t, std::size_t)>& body) {
    const std::size_t begin = count_ * i / size_, end = count_ * (i + 1) / size_;
    if (begin >= end) return;
    const ThreadPool* outer = current_pool();
    current_pool() = this;
    struct Restore {
      const ThreadPool* pool;
      ~Restore() { current_pool() = pool; }
    } restore{outer};
    try {
      body(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }
  void worker_loop(std::size_t index) {
    std::size_t seen = 0;
    for (;;) {
      const std::function<void(std::size_t, std::size_t)>* body = nullptr;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        body = body_;
      }
      run_chunk(index, *body);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --pending_;
      }
      done_.notify_one();
    }
  }

  std::size_t size_;
  std::vector<std::thread> workers_;
  std::mutex call_mutex_, mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(std::size_t, std::size_t)>* body_ = nullptr;
  std::size_t count_ = 0, pending_ = 0, generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

RANKQ_NAMESPACE_END  // namespace rankq
