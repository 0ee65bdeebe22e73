// Streaming generated text with stop sequences: text that could be the start of a stop sequence
// is held back until it is known not to be one, and the stop sequence itself is never printed
// (as OpenAI's and Hugging Face's `stop` behave). Header-only, no torch.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace attnzoo::apps {

class StopText {
 public:
  explicit StopText(std::vector<std::string> stops) : stops_(std::move(stops)) {
    stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
  }

  // TEXT is everything generated so far (it only grows). Returns the part that is now safe to
  // print; once a stop sequence appears, stopped() is true and text() ends before it.
  std::string update(const std::string& text) {
    if (stopped_) return {};
    std::size_t first = std::string::npos;
    for (const auto& s : stops_) first = std::min(first, text.find(s));
    if (first != std::string::npos) {
      stopped_ = true;
      text_ = text.substr(0, first);
      return take(text, first);
    }
    text_ = text;
    std::size_t hold = 0;  // the longest end of TEXT that begins some stop sequence
    for (const auto& s : stops_)
      for (std::size_t k = std::min(s.size() - 1, text.size()); k > hold; --k)
        if (text.compare(text.size() - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
    return take(text, text.size() - hold);
  }
  // The rest of TEXT once generation has ended without a stop sequence.
  std::string finish(const std::string& text) { return stopped_ ? std::string() : take(text, text.size()); }

  bool stopped() const { return stopped_; }
  // The generated text, cut before the stop sequence if one appeared.
  const std::string& text() const { return text_; }

 private:
  std::string take(const std::string& text, std::size_t end) {
    if (end <= printed_) return {};
    std::string out = text.substr(printed_, end - printed_);
    printed_ = end;
    return out;
  }

  std::vector<std::string> stops_;
  std::size_t printed_ = 0;
  bool stopped_ = false;
  std::string text_;
};

}  // namespace attnzoo::apps
