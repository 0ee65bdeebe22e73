// Pictures of vit-classify: attention maps over the image (a grid of panels: the image, then one
// heat overlay per map) written as PNG through OpenCV.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace attnzoo::apps {

struct Panel {
  torch::Tensor map;  // (gh, gw) float, any range (scaled to its own min..max); undefined = the image alone
  std::string title;
};

// IMAGE: (H, W, 3) uint8 RGB. Each panel is the image scaled to `panel_px` a side with its map
// (bilinearly upsampled, jet colours) blended over it at `alpha`, titled; `cols` panels a row.
// Returns false without OpenCV; throws std::runtime_error when PATH cannot be written.
bool write_overlay_grid(const torch::Tensor& image, const std::vector<Panel>& panels, int cols,
                        const std::filesystem::path& path, int panel_px = 160, double alpha = 0.55);

}  // namespace attnzoo::apps
