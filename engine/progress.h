// Progress of a long loop: on a terminal a bar redrawn in place on stderr with rate and ETA; in a
// log (stderr not a terminal) one plain line per log interval on stdout.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace attnzoo::engine {

class Progress {
 public:
  // total: steps to reach; start: steps already done (resume); unit: "it", "img", ...
  Progress(int64_t total, int64_t start, int64_t log_interval, std::string label = "train");

  // Step `done` (1-based count) finished; `detail` is shown after the bar ("loss 2.31 | 27k tok/s").
  void update(int64_t done, const std::string& detail);
  // A message on its own line (e.g. an eval result) without breaking the bar.
  void message(const std::string& line);
  void finish();

  static std::string format_duration(double seconds);  // "1:02:03", "4:05", "12s"
  bool is_terminal() const { return tty_; }

 private:
  void clear_line();
  int64_t total_, start_, log_interval_;
  std::string label_;
  bool tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point t0_, last_draw_;
};

}  // namespace attnzoo::engine
