// Tests for rankq/io/file.hpp, output_path.hpp and detect.hpp: whole-file reads (never blocking on a FIFO), the
// atomic-write guarantee (no partial or temporary file after any failure or signal, the old file untouched, only a
// regular file replaced), the dry check of an output path, and model-file detection by magic bytes.
#include "rankq/io/file.hpp"

#include <sys/wait.h>

#include "rankq/io/detect.hpp"
#include "rankq/io/output_path.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

/// A fresh empty directory, removed with its content at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("rankq_test_io_file_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path)) out.push_back(e.path().filename().string());
    return out;
  }
};

std::vector<std::uint8_t> pattern(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 131 + 7);
  return v;
}

TEST(IoFile, WriteThenReadRoundTrip) {
  TempDir dir;
  const std::string p = (dir.path / "a.bin").string();
  const auto data = pattern(100000);
  rankq::io::write_file_atomic(p, data);
  EXPECT_EQ(rankq::io::read_file_bytes(p), data);
  // Overwrite with pieces; an empty piece and an empty file are fine.
  const auto more = pattern(10);
  rankq::io::write_file_atomic(p, {{more.data(), 3}, {nullptr, 0}, {more.data() + 3, 7}});
  EXPECT_EQ(rankq::io::read_file_bytes(p), more);
  rankq::io::write_file_atomic(p, std::vector<std::uint8_t>{});
  EXPECT_TRUE(rankq::io::read_file_bytes(p).empty());
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"a.bin"});  // no temporary file left behind
  // Permissions follow the umask like an ordinary new file (not mkstemp's 0600).
  const ::mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(static_cast<unsigned>(fs::status(p).permissions()), 0666u & ~static_cast<unsigned>(mask));
}

TEST(IoFile, ReadFailuresThrowIoError) {
  TempDir dir;
  EXPECT_THROW(rankq::io::read_file_bytes((dir.path / "missing.bin").string()), rankq::io::io_error);
  try {
    rankq::io::read_file_bytes(dir.path.string());
    ADD_FAILURE() << "reading a directory must throw";
  } catch (const rankq::io::io_error& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
  // A FIFO without a writer: refused at once (opening it must not block).
  const std::string fifo = (dir.path / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  try {
    rankq::io::read_file_bytes(fifo);
    ADD_FAILURE() << "reading a FIFO must throw";
  } catch (const rankq::io::io_error& e) {
    EXPECT_NE(std::string(e.what()).find(fifo), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  }
}

TEST(IoFile, WriterReplacesOnlyRegularFiles) {
  TempDir dir;
  const auto data = pattern(10);
  const std::string fifo = (dir.path / "fifo").string(), link = (dir.path / "link").string(),
                    target = (dir.path / "target").string(), empty_dir = (dir.path / "empty").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  rankq::io::write_file_atomic(target, data);
  fs::create_symlink(target, link);
  fs::create_directories(empty_dir);  // rename() would replace an empty directory by a file
  for (const std::string& p : {fifo, link, empty_dir}) {
    try {
      rankq::io::write_file_atomic(p, pattern(20));
      ADD_FAILURE() << "expected io_error for " << p;
    } catch (const rankq::io::io_error& e) {
      EXPECT_NE(std::string(e.what()).find("refusing to replace '" + p + "'"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(fs::status(fifo).type(), fs::file_type::fifo);
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_TRUE(fs::is_directory(empty_dir));
  EXPECT_EQ(rankq::io::read_file_bytes(target), data);
  EXPECT_EQ(dir.entries().size(), 4u);  // no temporary file left behind
}

TEST(IoFile, SignalRemovesTemporaryFileAndStillEndsTheProcess) {
  TempDir dir;
  const std::string tmp = (dir.path / "x.tmp.1.2.3").string();
  const ::pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // in the child: a temporary file being written when SIGTERM arrives
    std::ofstream(tmp) << "partial";
    rankq::io::remove_temporary_files_on_signal();
    const rankq::io::detail::TempFileGuard guard(tmp);
    std::raise(SIGTERM);
    std::_Exit(0);  // not reached: the handler re-raises with the default action
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
  EXPECT_FALSE(fs::exists(tmp));
}

TEST(IoFile, OutputPathDryCheck) {
  TempDir dir;
  const std::string input = (dir.path / "model.bin").string(), out = (dir.path / "out.safetensors").string();
  rankq::io::write_file_atomic(input, pattern(10));
  EXPECT_NO_THROW(rankq::io::check_output_path("--out", out, {input, ""}));  // absent target
  rankq::io::write_file_atomic(out, pattern(3));
  EXPECT_NO_THROW(rankq::io::check_output_path("--out", out, {input}));  // a regular file is replaced
  const auto expect_refused = [](const std::string& p, const std::vector<std::string>& inputs, const std::string& why) {
    try {
      rankq::io::check_output_path("--out", p, inputs);
      ADD_FAILURE() << "expected io_error for " << p;
    } catch (const rankq::io::io_error& e) {
      EXPECT_NE(std::string(e.what()).find("--out '" + p + "'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  expect_refused(input, {input}, "is the input file");
  expect_refused((dir.path / "." / "model.bin").string(), {input}, "is the input file");  // another spelling
  fs::create_hard_link(input, dir.path / "hard");
  expect_refused((dir.path / "hard").string(), {input}, "is the input file");
  fs::create_symlink(input, dir.path / "soft");
  expect_refused((dir.path / "soft").string(), {}, "symbolic link");
  expect_refused(dir.path.string(), {}, "is a directory");
  expect_refused((dir.path / "no" / "x").string(), {}, "cannot be used");
  expect_refused((dir.path / "model.bin" / "x").string(), {}, "is not a directory");
  ASSERT_EQ(::mkfifo((dir.path / "fifo").c_str(), 0600), 0);
  expect_refused((dir.path / "fifo").string(), {}, "FIFO");
  expect_refused("/dev/null", {}, "device");
  expect_refused("", {}, "is empty");
}

TEST(IoFile, DetectModelFileByMagic) {
  TempDir dir;
  const auto write = [&](const std::string& name, const std::string& bytes) {
    const std::string p = (dir.path / name).string();
    rankq::io::write_file_atomic(p, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    return p;
  };
  using rankq::io::ModelFileKind;
  EXPECT_EQ(rankq::io::detect_model_file(write("gguf.bin", std::string("GGUF\3\0\0\0", 8))), ModelFileKind::gguf);
  EXPECT_EQ(rankq::io::detect_model_file(write("st.gguf", std::string("\x02\0\0\0\0\0\0\0{}", 10))), ModelFileKind::safetensors);
  EXPECT_EQ(rankq::io::detect_model_file(write("l.gguf", std::string(28, '\x01'))), ModelFileKind::llama2c);
  EXPECT_EQ(rankq::io::detect_model_file(write("short", "GG")), ModelFileKind::llama2c);
  EXPECT_THROW(rankq::io::detect_model_file((dir.path / "missing").string()), rankq::io::io_error);
  EXPECT_THROW(rankq::io::detect_model_file(dir.path.string()), rankq::io::io_error);
  ASSERT_EQ(::mkfifo((dir.path / "fifo").c_str(), 0600), 0);
  EXPECT_THROW(rankq::io::detect_model_file((dir.path / "fifo").string()), rankq::io::io_error);  // does not block
}

TEST(IoFile, FailedWriteToMissingDirectoryLeavesNothing) {
  TempDir dir;
  const std::string p = (dir.path / "no" / "such" / "dir" / "x.bin").string();
  const auto data = pattern(10);
  try {
    rankq::io::write_file_atomic(p, data);
    ADD_FAILURE() << "expected io_error";
  } catch (const rankq::io::io_error& e) {
    EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(p));
  EXPECT_TRUE(dir.entries().empty());
  // Parent is a regular file.
  std::ofstream((dir.path / "file").string()) << "x";
  EXPECT_THROW(rankq::io::write_file_atomic((dir.path / "file" / "x.bin").string(), data), rankq::io::io_error);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"file"});
}

TEST(IoFile, FailedWriteToUnwritableDirectoryLeavesNothing) {
  // /proc refuses new files even for root (chmod-based checks would not hold when the tests run as root).
  const std::string p = "/proc/rankq_test_io_file_" + std::to_string(::getpid()) + ".bin";
  EXPECT_THROW(rankq::io::write_file_atomic(p, pattern(10)), rankq::io::io_error);
  EXPECT_FALSE(fs::exists(p));
  if (::geteuid() != 0) {  // an ordinary read-only directory, where permissions apply
    TempDir dir;
    fs::create_directories(dir.path / "ro");
    fs::permissions(dir.path / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    EXPECT_THROW(rankq::io::write_file_atomic((dir.path / "ro" / "x.bin").string(), pattern(10)), rankq::io::io_error);
    fs::permissions(dir.path / "ro", fs::perms::owner_all);
    EXPECT_TRUE(fs::is_empty(dir.path / "ro"));
  }
}

TEST(IoFile, FailedRenameRemovesTemporaryFile) {
  TempDir dir;
  fs::create_directories(dir.path / "target" / "sub");  // a non-empty directory cannot be replaced by a file
  const auto data = pattern(1000);
  EXPECT_THROW(rankq::io::write_file_atomic((dir.path / "target").string(), data), rankq::io::io_error);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"target"});
  EXPECT_TRUE(fs::is_directory(dir.path / "target" / "sub"));
}

TEST(IoFile, FailureMidWriteKeepsOldFileAndRemovesTemporary) {
  TempDir dir;
  const std::string p = (dir.path / "model.bin").string();
  const auto old_data = pattern(100);
  rankq::io::write_file_atomic(p, old_data);
  // Make write() fail half way with EFBIG: limit the file size this process may write.
  struct sigaction ignore {}, previous {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &previous), 0);
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit small = old_limit;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  bool threw = false;
  std::string message;
  try {
    rankq::io::write_file_atomic(p, pattern(1 << 20));
  } catch (const rankq::io::io_error& e) {
    threw = true;
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  ::sigaction(SIGXFSZ, &previous, nullptr);
  EXPECT_TRUE(threw);
  EXPECT_NE(message.find("cannot write"), std::string::npos) << message;
  EXPECT_EQ(rankq::io::read_file_bytes(p), old_data);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"model.bin"});
}

TEST(IoFile, BadArguments) {
  EXPECT_THROW(rankq::io::write_file_atomic("", pattern(1)), rankq::invalid_argument);
  EXPECT_THROW(rankq::io::write_file_atomic("/tmp/x", nullptr, 3), rankq::invalid_argument);
}

}  // namespace

TEST(IoFile, MappedFileSeesTheFileBytes) {
  TempDir dir;
  const std::string p = (dir.path / "mapped.bin").string();
  std::vector<std::uint8_t> data(10000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 7 + 3);
  rankq::io::write_file_atomic(p, data);
  {
    const rankq::io::MappedFile m(p);
    ASSERT_EQ(m.size(), data.size());
    EXPECT_EQ(std::vector<std::uint8_t>(m.data(), m.data() + m.size()), data);
  }
  rankq::io::write_file_atomic(p, std::vector<std::uint8_t>{});
  const rankq::io::MappedFile empty(p);
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_EQ(empty.data(), nullptr);
}

TEST(IoFile, MappedFileFailuresThrowIoError) {
  TempDir dir;
  try {
    rankq::io::MappedFile m((dir.path / "missing.bin").string());
    ADD_FAILURE() << "expected io_error";
  } catch (const rankq::io::io_error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.bin"), std::string::npos) << e.what();
  }
  try {
    rankq::io::MappedFile m(dir.path.string());
    ADD_FAILURE() << "expected io_error";
  } catch (const rankq::io::io_error& e) {
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  }
}
