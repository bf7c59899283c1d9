// rankq/io/file.hpp — whole-file reads, read-only file mappings (MappedFile) and atomic whole-file writes
// (temporary file + rename) for the model readers and writers; io_error for failures of the operating system
// (open, read, write, rename). The writer replaces only a regular file; its temporary file is removed on every
// error and, once a program called remove_temporary_files_on_signal(), on SIGINT/SIGTERM.
#pragma once

#include "rankq/detail/abi.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "rankq/error.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {

/// Thrown when the operating system refuses a file operation (missing file, permission, disk full...).
/// The message names the operation, the path and the system's reason.
class io_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

[[noreturn]] inline void throw_io(const std::string& what, const std::string& path, int err) {
  throw io_error("rankq::io: cannot " + what + " '" + path + "': " + std::strerror(err));
}

/// Closes a POSIX descriptor on scope exit.
struct FdGuard {
  int fd = -1;
  FdGuard() = default;
  explicit FdGuard(int f) : fd(f) {}
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  FdGuard(FdGuard&& o) noexcept : fd(o.fd) { o.fd = -1; }
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

/// The temporary files being written right now (at most kTempSlots at a time), for the signal handler: it may
/// only call async-signal-safe functions, so the paths are plain char arrays published through atomics.
inline constexpr std::size_t kTempSlots = 16, kTempPathMax = 4096;
struct TempSlot {
  std::atomic<bool> used{false};
  std::atomic<bool> ready{false};
  char path[kTempPathMax];
};
inline TempSlot* temp_slots() {
  static TempSlot slots[kTempSlots];
  return slots;
}

/// Registers `tmp` for removal on a signal while the guard lives (silently unregistered if all slots are taken
/// or the path is too long: the error paths still remove it).
class TempFileGuard {
 public:
  explicit TempFileGuard(const std::string& tmp) {
    if (tmp.size() >= kTempPathMax) return;
    for (std::size_t i = 0; i < kTempSlots && !slot_; ++i) {
      bool expected = false;
      if (temp_slots()[i].used.compare_exchange_strong(expected, true)) slot_ = &temp_slots()[i];
    }
    if (!slot_) return;
    std::memcpy(slot_->path, tmp.c_str(), tmp.size() + 1);
    slot_->ready.store(true);
  }
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
  ~TempFileGuard() {
    if (!slot_) return;
    slot_->ready.store(false);
    slot_->used.store(false);
  }

 private:
  TempSlot* slot_ = nullptr;
};

inline void remove_temporary_files_and_reraise(int signal_number) {
  for (std::size_t i = 0; i < kTempSlots; ++i)
    if (temp_slots()[i].ready.load()) ::unlink(temp_slots()[i].path);
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);
}

inline std::string parent_dir(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

/// Opens `path` read-only for reading a regular file: a FIFO is opened without waiting for a writer (O_NONBLOCK)
/// and refused, like a directory, a device or a socket. Fills `st`. Throws io_error naming the path.
inline FdGuard open_regular_file(const std::string& path, struct stat& st) {
  FdGuard f(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (f.fd < 0) throw_io("open", path, errno);
  if (::fstat(f.fd, &st) != 0) throw_io("stat", path, errno);
  if (S_ISDIR(st.st_mode)) throw io_error("rankq::io: cannot read '" + path + "': it is a directory");
  if (!S_ISREG(st.st_mode)) throw io_error("rankq::io: cannot read '" + path + "': not a regular file");
  return f;
}

}  // namespace detail

/// The whole content of a regular file. Throws io_error if it cannot be opened or read.
inline std::vector<std::uint8_t> read_file_bytes(const std::string& path) {
  struct stat st {};
  const detail::FdGuard f = detail::open_regular_file(path, st);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ::ssize_t n = ::read(f.fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) detail::throw_io("read", path, errno);
    if (n == 0) throw io_error("rankq::io: cannot read '" + path + "': file shrank while reading");
    done += static_cast<std::size_t>(n);
  }
  return bytes;
}

/// A regular file mapped read-only into memory (mmap, MAP_PRIVATE): the readers parse it in place, so a model
/// file is never copied whole into the heap; its pages are loaded on first touch and belong to the page cache.
/// Unmapped on destruction; not copyable. An empty file maps to data() == nullptr, size() == 0. As with any
/// mapping, the file must not be truncated by another process while mapped (that would raise SIGBUS).
class MappedFile {
 public:
  /// Maps `path`. Throws io_error naming the path if it cannot be opened, is not a regular file, or cannot be mapped.
  explicit MappedFile(const std::string& path) {
    detail::FdGuard f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (f.fd < 0) detail::throw_io("open", path, errno);
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) detail::throw_io("stat", path, errno);
    if (!S_ISREG(st.st_mode)) throw io_error("rankq::io: cannot read '" + path + "': not a regular file");
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ == 0) return;
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, f.fd, 0);
    if (p == MAP_FAILED) detail::throw_io("map (mmap)", path, errno);
    data_ = static_cast<const std::uint8_t*>(p);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<std::uint8_t*>(data_), size_);
  }

  const std::uint8_t* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

 private:
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

/// A borrowed byte range, one piece of a file being written.
struct ByteSpan {
  const std::uint8_t* data;
  std::size_t size;
};

/// Writes what `produce` hands to its `write` callback, in order, to `path` atomically, as write_file_atomic below
/// (same temporary file, checks, cleanup and rename). For output that is not in memory at once (a file assembled
/// from a spool): `produce` may call `write` any number of times; an exception it throws removes the temporary file
/// and propagates.
inline void write_file_atomic_with(const std::string& path,
                                   const std::function<void(const std::function<void(const std::uint8_t*, std::size_t)>&)>& produce) {
  rankq::detail::require(!path.empty(), "io::write_file_atomic", "path", "is empty");
  struct stat target {};
  if (::lstat(path.c_str(), &target) == 0 && !S_ISREG(target.st_mode))
    throw io_error("rankq::io: refusing to replace '" + path + "': it is not a regular file (" +
                   (S_ISDIR(target.st_mode) ? "a directory" : S_ISLNK(target.st_mode) ? "a symbolic link" : "a device, FIFO or socket") +
                   ")");
  static std::atomic<unsigned> counter{0};
  const auto stamp = static_cast<unsigned long long>(std::chrono::steady_clock::now().time_since_epoch().count());
  std::string tmp;
  detail::FdGuard f;
  for (int attempt = 0; f.fd < 0; ++attempt) {
    tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++) + "." +
          std::to_string(stamp % 1000000007ull);
    f.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (f.fd < 0 && (errno != EEXIST || attempt >= 100)) detail::throw_io("create temporary file for", path, errno);
  }
  const detail::TempFileGuard registered(tmp);
  const auto fail = [&](const char* what, int err) {
    ::close(f.release());
    ::unlink(tmp.c_str());
    detail::throw_io(what, tmp, err);
  };
  const auto write = [&](const std::uint8_t* data, std::size_t size) {
    std::size_t done = 0;
    while (done < size) {
      const ::ssize_t n = ::write(f.fd, data + done, size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail("write", n < 0 ? errno : EIO);
      done += static_cast<std::size_t>(n);
    }
  };
  try {
    produce(write);
  } catch (...) {
    if (f.fd >= 0) {
      ::close(f.release());
      ::unlink(tmp.c_str());
    }
    throw;
  }
  if (::fsync(f.fd) != 0) fail("flush (fsync)", errno);
  if (::close(f.release()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    detail::throw_io("close", tmp, err);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    detail::throw_io("rename temporary file onto", path, err);
  }
  // Make the rename itself durable; failure here does not undo the (already visible) new file.
  detail::FdGuard dir(::open(detail::parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.fd >= 0) ::fsync(dir.fd);
}

/// Writes the concatenation of `pieces` to `path` atomically: they go to a new temporary file in the same directory
/// ("<path>.tmp.<pid>.<n>"), which is flushed to disk (fsync) and then renamed over `path`. Readers see either the
/// old file or the complete new one; on any failure the temporary file is removed, `path` is left as it was, and
/// io_error is thrown. The new file gets the usual permissions (0666 minus the umask). Only a regular file is
/// replaced: if `path` is a directory, symbolic link, device, FIFO or socket, io_error is thrown before anything
/// is created. While the temporary file exists it is registered for remove_temporary_files_on_signal().
inline void write_file_atomic(const std::string& path, const std::vector<ByteSpan>& pieces) {
  rankq::detail::require(!path.empty(), "io::write_file_atomic", "path", "is empty");
  for (const ByteSpan& p : pieces) rankq::detail::require_non_null(p.data, p.size, "io::write_file_atomic", "pieces");
  write_file_atomic_with(path, [&](const std::function<void(const std::uint8_t*, std::size_t)>& write) {
    for (const ByteSpan& piece : pieces) write(piece.data, piece.size);
  });
}

/// Installs handlers for SIGINT and SIGTERM that remove the temporary files of writes in progress and then
/// re-raise the signal with its default action (so the process still ends as the signal says). For programs
/// (rankq-quantize calls it first thing); a library never installs signal handlers by itself.
inline void remove_temporary_files_on_signal() {
  std::signal(SIGINT, detail::remove_temporary_files_and_reraise);
  std::signal(SIGTERM, detail::remove_temporary_files_and_reraise);
}

inline void write_file_atomic(const std::string& path, const std::uint8_t* data, std::size_t size) {
  write_file_atomic(path, std::vector<ByteSpan>{{data, size}});
}
inline void write_file_atomic(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}

}  RANKQ_NAMESPACE_END  // namespace rankq::io
