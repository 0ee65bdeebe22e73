// Line charts as PNG (OpenCV drawing), for loss curves and other per-step metrics.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace attnzoo::engine {

struct Series {
  std::string name;
  std::vector<double> x, y;
  bool markers = false;  // dots on each point (sparse series such as val loss)
};

// Draws the series on shared axes and writes PATH. Returns false (and writes nothing) when the
// build has no OpenCV or there is nothing to draw; throws std::runtime_error when PATH cannot be written.
bool plot_lines(const std::vector<Series>& series, const std::string& title, const std::string& xlabel,
                const std::string& ylabel, const std::filesystem::path& path);

// train and val "loss" against "step" from a metrics.jsonl, drawn to PNG.
bool plot_loss_curves(const std::filesystem::path& metrics_jsonl, const std::filesystem::path& png);

}  // namespace attnzoo::engine
