// rankq/io/output_path.hpp — the dry check a program runs on an output path before any long work: the directory
// exists and is writable, the target is absent or a regular file, and it is none of the program's input files
// (compared by device and inode, so another spelling or a hard link of an input is caught).
#pragma once

#include "rankq/detail/abi.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "rankq/io/file.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {

/// True if both paths exist and name the same file (same device and inode; symbolic links followed).
inline bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/// Throws io_error naming `what` (e.g. "--out") and `path` unless write_file_atomic(path, ...) can succeed as far
/// as can be known in advance: `path` is non-empty, its directory exists and is writable and searchable, `path`
/// does not exist or is a regular file (not a directory, symbolic link, device, FIFO or socket), and `path` is not
/// the same file as any of `inputs` (empty entries are skipped). Creates nothing.
inline void check_output_path(const std::string& what, const std::string& path, const std::vector<std::string>& inputs = {}) {
  const auto fail = [&](const std::string& problem) { throw io_error(what + " '" + path + "': " + problem); };
  if (path.empty()) fail("is empty");
  if (path.back() == '/') fail("names a directory, expected a file");
  const std::string dir = detail::parent_dir(path);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) fail("directory '" + dir + "' cannot be used: " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) fail("'" + dir + "' is not a directory");
  if (::access(dir.c_str(), W_OK | X_OK) != 0) fail("directory '" + dir + "' is not writable: " + std::strerror(errno));
  if (::lstat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) fail("is a directory");
    if (S_ISLNK(st.st_mode)) fail("is a symbolic link (only a regular file is replaced)");
    if (!S_ISREG(st.st_mode)) fail("is a device, FIFO or socket (only a regular file is replaced)");
  } else if (errno != ENOENT) {
    fail(std::string("cannot be examined: ") + std::strerror(errno));
  }
  for (const std::string& input : inputs)
    if (!input.empty() && same_file(path, input)) fail("is the input file '" + input + "'");
}

}  RANKQ_NAMESPACE_END  // namespace rankq::io
