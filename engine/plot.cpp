#include "engine/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

#include "engine/metrics.h"

#ifdef ATTNZOO_HAVE_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace attnzoo::engine {

#ifdef ATTNZOO_HAVE_OPENCV
namespace {

std::string tick_label(double v) {
  char buf[32];
  if (std::fabs(v) >= 1e6 || (v != 0 && std::fabs(v) < 0.01)) std::snprintf(buf, sizeof buf, "%.3g", v);
  else if (v == std::round(v)) std::snprintf(buf, sizeof buf, "%.0f", v);
  else std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  if (s.find('.') != std::string::npos && s.find('e') == std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

// "Nice" tick step for a range (1, 2 or 5 times a power of ten).
double tick_step(double range, int target) {
  const double raw = range / target;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * p) return m * p;
  return 10 * p;
}

}  // namespace
#endif

bool plot_lines(const std::vector<Series>& series, const std::string& title, const std::string& xlabel,
                const std::string& ylabel, const std::filesystem::path& path) {
#ifndef ATTNZOO_HAVE_OPENCV
  (void)series, (void)title, (void)xlabel, (void)ylabel, (void)path;
  return false;
#else
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    }
  if (!std::isfinite(x0)) return false;
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const double pad = 0.05 * (y1 - y0);
  y0 -= pad, y1 += pad;

  const int W = 960, H = 540, left = 80, right = 50, top = 50, bottom = 60;
  cv::Mat img(H, W, CV_8UC3, cv::Scalar(255, 255, 255));
  const auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * (W - left - right); };
  const auto py = [&](double y) { return H - bottom - (y - y0) / (y1 - y0) * (H - top - bottom); };
  const auto font = cv::FONT_HERSHEY_SIMPLEX;
  const cv::Scalar grid(225, 225, 225), ink(40, 40, 40);

  for (double step = tick_step(y1 - y0, 6), v = std::ceil(y0 / step) * step; v <= y1; v += step) {
    const int y = static_cast<int>(py(v));
    cv::line(img, {left, y}, {W - right, y}, grid, 1);
    cv::putText(img, tick_label(v), {8, y + 5}, font, 0.45, ink, 1, cv::LINE_AA);
  }
  for (double step = tick_step(x1 - x0, 8), v = std::ceil(x0 / step) * step; v <= x1; v += step) {
    const int x = static_cast<int>(px(v));
    cv::line(img, {x, top}, {x, H - bottom}, grid, 1);
    cv::putText(img, tick_label(v), {x - 15, H - bottom + 20}, font, 0.45, ink, 1, cv::LINE_AA);
  }
  cv::rectangle(img, {left, top}, {W - right, H - bottom}, ink, 1);
  cv::putText(img, title, {left, 32}, font, 0.7, ink, 1, cv::LINE_AA);
  cv::putText(img, xlabel, {W / 2 - 20, H - 15}, font, 0.5, ink, 1, cv::LINE_AA);
  cv::putText(img, ylabel, {8, top - 10}, font, 0.5, ink, 1, cv::LINE_AA);

  static const cv::Scalar colors[] = {{180, 119, 31}, {14, 127, 255}, {44, 160, 44}, {40, 39, 214}, {189, 103, 148}};
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    const cv::Scalar color = colors[k % 5];
    std::vector<cv::Point> pts;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (std::isfinite(s.y[i])) pts.emplace_back(static_cast<int>(px(s.x[i])), static_cast<int>(py(s.y[i])));
    if (pts.size() > 1) cv::polylines(img, pts, false, color, s.markers ? 2 : 1, cv::LINE_AA);
    if (s.markers)
      for (const auto& p : pts) cv::circle(img, p, 4, color, cv::FILLED, cv::LINE_AA);
    const int ly = top + 20 + 22 * static_cast<int>(k);
    cv::line(img, {W - right - 150, ly - 5}, {W - right - 120, ly - 5}, color, 3);
    cv::putText(img, s.name, {W - right - 112, ly}, font, 0.5, ink, 1, cv::LINE_AA);
  }
  if (!cv::imwrite(path.string(), img)) throw std::runtime_error(path.string() + ": cannot write PNG");
  return true;
#endif
}

bool plot_heatmap(const Heatmap& hm, const std::filesystem::path& path) {
  const int rows = static_cast<int>(hm.values.size());
  const int cols = rows ? static_cast<int>(hm.values[0].size()) : 0;
  for (const auto& row : hm.values)
    if (static_cast<int>(row.size()) != cols)
      throw std::invalid_argument("plot_heatmap: ragged rows (" + std::to_string(row.size()) + " and " +
                                  std::to_string(cols) + " values)");
#ifndef ATTNZOO_HAVE_OPENCV
  (void)path;
  return false;
#else
  if (rows == 0 || cols == 0) return false;
  double lo = hm.vmin, hi = hm.vmax;
  if (lo == hi) {
    lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const auto& row : hm.values)
      for (double v : row)
        if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    if (!std::isfinite(lo)) lo = 0, hi = 1;
    if (hi == lo) hi = lo + 1;
  }
  // Cells of at least 4 px, the grid at most ~720 px a side.
  const int cell = std::max(4, std::min(48, 720 / std::max(rows, cols)));
  const int left = 90, top = 50, right = 110, bottom = 70;
  const auto font = cv::FONT_HERSHEY_SIMPLEX;
  int baseline = 0;
  const int title_w = cv::getTextSize(hm.title, font, 0.6, 1, &baseline).width;
  const int W = std::max(left + cols * cell + right, left + title_w + 20), H = top + rows * cell + bottom;
  cv::Mat img(H, W, CV_8UC3, cv::Scalar(255, 255, 255));
  cv::Mat level(rows, cols, CV_8UC1);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const double v = hm.values[r][c];
      const double t = std::isfinite(v) ? std::clamp((v - lo) / (hi - lo), 0.0, 1.0) : 0.0;
      level.at<uint8_t>(r, c) = static_cast<uint8_t>(std::lround(255 * t));
    }
  cv::Mat colored, big;
  cv::applyColorMap(level, colored, cv::COLORMAP_VIRIDIS);
  cv::resize(colored, big, {cols * cell, rows * cell}, 0, 0, cv::INTER_NEAREST);
  big.copyTo(img(cv::Rect(left, top, cols * cell, rows * cell)));

  const cv::Scalar ink(40, 40, 40);
  cv::rectangle(img, {left - 1, top - 1}, {left + cols * cell, top + rows * cell}, ink, 1);
  // Every k-th label, so that row labels (~14 px tall) and column labels (~24 px wide) never overlap.
  const int row_step = (14 + cell - 1) / cell, col_step = (24 + cell - 1) / cell;
  for (int r = 0; r < rows && r < static_cast<int>(hm.row_labels.size()); r += row_step)
    cv::putText(img, hm.row_labels[r], {8, top + r * cell + cell / 2 + 4}, font, 0.4, ink, 1, cv::LINE_AA);
  // Column labels centred under their cells; labels wider than their room alternate between two lines.
  int widest = 0;
  for (const auto& l : hm.col_labels) widest = std::max(widest, cv::getTextSize(l, font, 0.4, 1, &baseline).width);
  const bool stagger = widest > col_step * cell - 4;
  for (int c = 0, k = 0; c < cols && c < static_cast<int>(hm.col_labels.size()); c += col_step, ++k) {
    const int w = cv::getTextSize(hm.col_labels[c], font, 0.4, 1, &baseline).width;
    const int x = std::max(0, left + c * cell + cell / 2 - w / 2);
    cv::putText(img, hm.col_labels[c], {x, top + rows * cell + 16 + (stagger && k % 2 ? 14 : 0)}, font, 0.4, ink, 1,
                cv::LINE_AA);
  }
  cv::putText(img, hm.title, {left, 32}, font, 0.6, ink, 1, cv::LINE_AA);
  cv::putText(img, hm.xlabel, {left, H - 15}, font, 0.5, ink, 1, cv::LINE_AA);
  cv::putText(img, hm.ylabel, {8, top - 8}, font, 0.45, ink, 1, cv::LINE_AA);

  // Colour bar: hi at the top, lo at the bottom.
  const int bar_x = left + cols * cell + 20, bar_h = rows * cell;
  cv::Mat ramp(bar_h, 1, CV_8UC1);
  for (int i = 0; i < bar_h; ++i) ramp.at<uint8_t>(i, 0) = static_cast<uint8_t>(255 - (255 * i) / std::max(1, bar_h - 1));
  cv::Mat ramp_colored, ramp_big;
  cv::applyColorMap(ramp, ramp_colored, cv::COLORMAP_VIRIDIS);
  cv::resize(ramp_colored, ramp_big, {16, bar_h}, 0, 0, cv::INTER_NEAREST);
  ramp_big.copyTo(img(cv::Rect(bar_x, top, 16, bar_h)));
  cv::putText(img, tick_label(hi), {bar_x + 20, top + 10}, font, 0.4, ink, 1, cv::LINE_AA);
  cv::putText(img, tick_label(lo), {bar_x + 20, top + bar_h}, font, 0.4, ink, 1, cv::LINE_AA);
  if (!cv::imwrite(path.string(), img)) throw std::runtime_error(path.string() + ": cannot write PNG");
  return true;
#endif
}

bool plot_loss_curves(const std::filesystem::path& metrics_jsonl, const std::filesystem::path& png) {
  Series train{"train", {}, {}, false}, val{"val", {}, {}, true};
  for (const auto& row : read_metrics(metrics_jsonl)) {
    if (!row.contains("loss") || !row["loss"].is_number() || !row.contains("step")) continue;
    Series& s = row.value("split", "") == "val" ? val : train;
    s.x.push_back(row["step"].get<double>());
    s.y.push_back(row["loss"].get<double>());
  }
  std::vector<Series> all;
  if (!train.x.empty()) all.push_back(train);
  if (!val.x.empty()) all.push_back(val);
  return plot_lines(all, "loss", "step", "loss", png);
}

}  // namespace attnzoo::engine
