// tests/guarded_buffer.hpp — a buffer whose last byte sits right before a PROT_NONE page, so any read past the
// end faults at once (KleidiAI-style tail testing).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace test {

class GuardedBuffer {
 public:
  explicit GuardedBuffer(std::size_t bytes) : bytes_(bytes) {
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const std::size_t data_pages = (bytes + page - 1) / page;
    map_bytes_ = (data_pages + 1) * page;
    void* p = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
    map_ = static_cast<std::uint8_t*>(p);
    if (mprotect(map_ + data_pages * page, page, PROT_NONE) != 0) throw std::runtime_error("mprotect failed");
    data_ = map_ + data_pages * page - bytes;
  }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;
  ~GuardedBuffer() { munmap(map_, map_bytes_); }

  template <typename T>
  T* as() { return reinterpret_cast<T*>(data_); }
  std::uint8_t* data() { return data_; }
  std::size_t size() const { return bytes_; }

  /// A guarded copy of `n` elements.
  template <typename T>
  static GuardedBuffer copy_of(const T* src, std::size_t n) {
    GuardedBuffer b(n * sizeof(T));
    if (n) std::memcpy(b.data_, src, n * sizeof(T));
    return b;
  }
  GuardedBuffer(GuardedBuffer&& o) noexcept : map_(o.map_), data_(o.data_), bytes_(o.bytes_), map_bytes_(o.map_bytes_) {
    o.map_ = nullptr;
    o.map_bytes_ = 0;
  }

 private:
  std::uint8_t* map_ = nullptr;
  std::uint8_t* data_ = nullptr;
  std::size_t bytes_ = 0, map_bytes_ = 0;
};

}  // namespace test
