// Tests for apps/gpt-train/stop_text.h: held-back prefixes, the stop sequence never printed, and
// what is printed always equals the text cut at the first stop.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "apps/gpt-train/stop_text.h"

using attnzoo::apps::StopText;

namespace {

// Feeds TEXT one character at a time, as tokens arrive; returns everything printed.
std::string stream(StopText& st, const std::string& text) {
  std::string printed;
  for (std::size_t n = 1; n <= text.size() && !st.stopped(); ++n) printed += st.update(text.substr(0, n));
  printed += st.finish(text);
  return printed;
}

}  // namespace

TEST(StopText, CutsBeforeTheFirstStopSequence) {
  StopText st({"\n\n", "THE END"});
  EXPECT_EQ(stream(st, "Once upon a time.\n\nNext chapter"), "Once upon a time.");
  EXPECT_TRUE(st.stopped());
  EXPECT_EQ(st.text(), "Once upon a time.");
}

TEST(StopText, HoldsBackAPossiblePrefixAndReleasesItWhenItIsNot) {
  StopText st({"STOP"});
  EXPECT_EQ(st.update("go ST"), "go ");     // "ST" might begin "STOP"
  EXPECT_EQ(st.update("go STA"), "STA");    // it did not
  EXPECT_EQ(st.update("go STAY S"), "Y ");  // "S" held again
  EXPECT_EQ(st.finish("go STAY S"), "S");   // the end: nothing to wait for
  EXPECT_FALSE(st.stopped());
}

TEST(StopText, WithoutStopsEverythingPasses) {
  StopText st({});
  EXPECT_EQ(stream(st, "anything at all"), "anything at all");
  StopText empty_only({""});
  EXPECT_EQ(stream(empty_only, "abc"), "abc");
}

TEST(StopText, PrintedTextAlwaysEqualsTheCutText) {
  const std::vector<std::string> stops = {"ab", "bab", "<|endoftext|>", "b\n"};
  const std::vector<std::string> texts = {"aab", "bba", "xbabx", "aaaa<|endof", "q<|endoftext|>r", "b\n", "abab", ""};
  for (const auto& t : texts) {
    StopText st(stops);
    const std::string printed = stream(st, t);
    std::size_t first = std::string::npos;
    for (const auto& s : stops) first = std::min(first, t.find(s));
    EXPECT_EQ(printed, t.substr(0, first)) << t;
  }
}
