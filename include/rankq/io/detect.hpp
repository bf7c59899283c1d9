// rankq/io/detect.hpp — which kind of model file a path holds, from its first bytes (magic first, never the
// name): GGUF ("GGUF"), safetensors (8-byte little-endian header length, then '{'), else a llama2.c checkpoint
// (which has no magic). Every tool detects through this one routine.
#pragma once

#include "rankq/detail/abi.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "rankq/io/file.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {

enum class ModelFileKind { gguf, safetensors, llama2c };

inline const char* to_string(ModelFileKind k) {
  return k == ModelFileKind::gguf ? "GGUF" : k == ModelFileKind::safetensors ? "safetensors" : "llama2.c";
}

/// The kind of the model file at `path`. Throws io_error naming the path if it cannot be opened, is a directory,
/// FIFO, device or socket (checked without blocking: a FIFO is opened with O_NONBLOCK), or cannot be read.
/// A file too short for any magic is reported as llama2c (whose reader then gives the precise format_error).
inline ModelFileKind detect_model_file(const std::string& path) {
  struct stat st {};
  const detail::FdGuard f = detail::open_regular_file(path, st);
  std::uint8_t head[9] = {};
  std::size_t got = 0;
  while (got < sizeof head) {
    const ::ssize_t n = ::read(f.fd, head + got, sizeof head - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) detail::throw_io("read", path, errno);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got >= 4 && head[0] == 'G' && head[1] == 'G' && head[2] == 'U' && head[3] == 'F') return ModelFileKind::gguf;
  if (got == 9 && head[8] == '{') {
    std::uint64_t header = 0;
    for (int i = 7; i >= 0; --i) header = header << 8 | head[i];
    if (header >= 2 && header <= static_cast<std::uint64_t>(st.st_size) - 8) return ModelFileKind::safetensors;
  }
  return ModelFileKind::llama2c;
}

}  RANKQ_NAMESPACE_END  // namespace rankq::io
