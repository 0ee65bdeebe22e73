#include "engine/progress.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <sstream>

namespace attnzoo::engine {

Progress::Progress(int64_t total, int64_t start, int64_t log_interval, std::string label)
    : total_(total), start_(start), log_interval_(log_interval), label_(std::move(label)),
      tty_(::isatty(STDERR_FILENO) == 1), t0_(std::chrono::steady_clock::now()), last_draw_(t0_) {}

std::string Progress::format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  const auto total = static_cast<long long>(s + 0.5);
  char buf[32];
  if (total >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", total / 3600, (total / 60) % 60, total % 60);
  else if (total >= 60) std::snprintf(buf, sizeof buf, "%lld:%02lld", total / 60, total % 60);
  else std::snprintf(buf, sizeof buf, "%llds", total);
  return buf;
}

void Progress::clear_line() {
  if (tty_ && drawn_) {
    std::cerr << "\r\033[2K" << std::flush;
    drawn_ = false;
  }
}

void Progress::update(int64_t done, const std::string& detail) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - t0_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done - start_) / elapsed : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : -1.0;
  if (tty_) {
    // Redraw at most ~10 times a second, and always on the last step.
    if (done < total_ && std::chrono::duration<double>(now - last_draw_).count() < 0.1) return;
    last_draw_ = now;
    const int width = 24;
    const int filled = total_ > 0 ? static_cast<int>(width * done / total_) : width;
    std::ostringstream bar;
    bar << "\r\033[2K" << label_ << " " << done << "/" << total_ << " [" << std::string(filled, '#')
        << std::string(width - filled, '.') << "] " << detail;
    char r[64];
    std::snprintf(r, sizeof r, " | %.2f it/s | ETA %s", rate, format_duration(eta).c_str());
    bar << r;
    std::cerr << bar.str() << std::flush;
    drawn_ = true;
  } else if (done % log_interval_ == 0 || done == total_) {
    std::cout << label_ << " step " << done << "/" << total_ << " | " << detail << " | ETA "
              << format_duration(eta) << std::endl;
  }
}

void Progress::message(const std::string& line) {
  clear_line();
  std::cout << line << std::endl;
}

void Progress::finish() {
  if (tty_ && drawn_) std::cerr << "\n" << std::flush;
  drawn_ = false;
}

}  // namespace attnzoo::engine
