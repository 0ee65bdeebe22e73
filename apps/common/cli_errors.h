// One-line command-line errors for every app, torch-free so that the tokenize app (which links
// no LibTorch) shares it: an unknown flag, a bad value or a missing subcommand prints
// "APP: error: MESSAGE (see --help)" on stderr, as apps::run_guarded does for other errors; the
// exit code stays CLI11's.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace attnzoo::apps {

inline void one_line_parse_errors(CLI::App& app, const std::string& name) {
  app.failure_message([name](const CLI::App*, const CLI::Error& e) {
    return name + ": error: " + e.what() + " (see --help)\n";
  });
}

}  // namespace attnzoo::apps
