// examples/rankq_quantize/progress.hpp — a small progress bar on stderr (redrawn in place on a terminal,
// one line per 10% otherwise, so CI logs stay short).
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

namespace rankq::example {

class ProgressBar {
 public:
  ProgressBar(std::string label, std::size_t total) : label_(std::move(label)), total_(total ? total : 1), tty_(isatty(2) != 0) {
    draw(0);
  }
  void update(std::size_t done) { draw(done); }
  void finish() {
    if (!tty_ && last_decile_ == 10) return;  // the 100% line is already out
    draw(total_);
    if (tty_) std::fputc('\n', stderr);
  }

 private:
  void draw(std::size_t done) {
    const int percent = static_cast<int>(100 * done / total_);
    if (!tty_) {
      if (percent / 10 == last_decile_) return;
      last_decile_ = percent / 10;
      std::fprintf(stderr, "%s: %zu/%zu (%d%%)\n", label_.c_str(), done, total_, percent);
      return;
    }
    const int width = 30, filled = static_cast<int>(width * done / total_);
    std::fprintf(stderr, "\r%-32s [%s%s] %zu/%zu", label_.c_str(), std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), done, total_);
    std::fflush(stderr);
  }
  std::string label_;
  std::size_t total_;
  bool tty_;
  int last_decile_ = -1;
};

}  // namespace rankq::example
