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

// A matrix drawn as coloured cells (attention weights, masks): row r of `values` is drawn top to
// bottom, column c left to right. Labels are optional (one per row / column; every k-th is shown
// when they would crowd).
struct Heatmap {
  std::vector<std::vector<double>> values;  // rows × cols, every row the same length
  std::string title, xlabel, ylabel;
  std::vector<std::string> row_labels, col_labels;
  double vmin = 0.0, vmax = 1.0;            // the colour scale; vmin == vmax: the data's range
};

// Draws the heatmap (viridis colours, a colour bar) and writes PATH. Returns false (and writes
// nothing) without OpenCV or for an empty matrix; throws std::invalid_argument for ragged rows and
// std::runtime_error when PATH cannot be written.
bool plot_heatmap(const Heatmap& heatmap, const std::filesystem::path& path);

// train and val "loss" against "step" from a metrics.jsonl, drawn to PNG.
bool plot_loss_curves(const std::filesystem::path& metrics_jsonl, const std::filesystem::path& png);

}  // namespace attnzoo::engine
