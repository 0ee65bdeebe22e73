#include "apps/vit-classify/pictures.h"

#include <stdexcept>

#ifdef ATTNZOO_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace attnzoo::apps {

bool write_overlay_grid(const torch::Tensor& image, const std::vector<Panel>& panels, int cols,
                        const std::filesystem::path& path, int panel_px, double alpha) {
  TORCH_CHECK(image.dim() == 3 && image.size(2) == 3 && image.scalar_type() == torch::kUInt8,
              "expected an (H, W, 3) uint8 image, got ", image.sizes());
#ifndef ATTNZOO_HAVE_OPENCV
  (void)panels, (void)cols, (void)path, (void)panel_px, (void)alpha;
  return false;
#else
  const int n = static_cast<int>(panels.size());
  cols = std::max(1, std::min(cols, n));
  const int rows = (n + cols - 1) / cols, title_h = 22, pad = 6;
  const int W = cols * (panel_px + pad) + pad, H = rows * (panel_px + title_h + pad) + pad;
  cv::Mat canvas(H, W, CV_8UC3, cv::Scalar(255, 255, 255));
  auto img = image.contiguous();
  cv::Mat rgb(static_cast<int>(img.size(0)), static_cast<int>(img.size(1)), CV_8UC3, img.data_ptr<uint8_t>());
  cv::Mat bgr, base;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  // Small images (28×28) are enlarged without smoothing, so pixels stay visible.
  cv::resize(bgr, base, {panel_px, panel_px}, 0, 0, img.size(0) < panel_px / 2 ? cv::INTER_NEAREST : cv::INTER_AREA);
  for (int i = 0; i < n; ++i) {
    const int x = pad + (i % cols) * (panel_px + pad), y = pad + (i / cols) * (panel_px + title_h + pad);
    cv::Mat tile = base.clone();
    if (panels[i].map.defined()) {
      auto m = panels[i].map.detach().to(torch::kCPU, torch::kFloat).contiguous();
      const float lo = m.min().item<float>(), hi = m.max().item<float>();
      m = hi > lo ? (m - lo) / (hi - lo) : torch::zeros_like(m);
      auto u8 = m.mul(255.0).round().to(torch::kUInt8).contiguous();
      cv::Mat small(static_cast<int>(u8.size(0)), static_cast<int>(u8.size(1)), CV_8UC1, u8.data_ptr<uint8_t>());
      cv::Mat big, heat;
      cv::resize(small, big, {panel_px, panel_px}, 0, 0, cv::INTER_LINEAR);
      cv::applyColorMap(big, heat, cv::COLORMAP_JET);
      cv::addWeighted(heat, alpha, tile, 1.0 - alpha, 0.0, tile);
    }
    tile.copyTo(canvas(cv::Rect(x, y + title_h, panel_px, panel_px)));
    cv::putText(canvas, panels[i].title, {x, y + 15}, cv::FONT_HERSHEY_SIMPLEX, 0.42, cv::Scalar(30, 30, 30), 1,
                cv::LINE_AA);
  }
  if (!cv::imwrite(path.string(), canvas)) throw std::runtime_error(path.string() + ": cannot write PNG");
  return true;
#endif
}

}  // namespace attnzoo::apps
