// What vit-classify's subcommands share: the run config (model + training settings + data and
// augmentation), and a classifier loaded from a run or a timm download together with its class
// names and the preprocessing its images need.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "datasets/images.h"
#include "engine/train_config.h"
#include "models/vit/vit.h"

namespace attnzoo::apps {

struct VitRunConfig {
  models::ViTConfig model = models::vit_small_28();
  engine::TrainConfig train;
  std::string data;                 // the data directory (idx, CIFAR-10 or ImageFolder)
  datasets::ImageTransform augment; // training transform (size, channels and normalisation filled from the model)
  datasets::ImageTransform eval;    // eval/predict transform
  std::string init_from;            // RUN, timm:DIR or mae:RUN the weights came from ("" = scratch)
  bool freeze_backbone = false;     // train only the head (and fc_norm): a linear probe
  double backbone_lr_scale = 1.0;   // full fine-tuning: the backbone's learning rate = lr · this
  int64_t train_subset = 0;         // train on this many images of the training split (seeded choice); 0 = all
};

// Defaults for small images: AdamW 1e-3 with warmup and cosine decay, weight decay 0.05,
// horizontal flips, mean = std = 0.5.
VitRunConfig default_vit_run_config();

nlohmann::json to_json(const VitRunConfig& cfg);
// Applies {"model", "train", "data", "augment", "eval", "init_from", "freeze_backbone"} on top of
// CFG, refusing unknown keys; throws std::invalid_argument "SOURCE: ..." naming the key.
void apply_json(VitRunConfig& cfg, const nlohmann::json& j, const std::string& source);

// The model, its class names and its eval preprocessing, in eval mode on DEVICE.
struct Classifier {
  models::VisionTransformer model = nullptr;
  std::vector<std::string> classes;  // one per output; "0", "1", ... when the source names none
  datasets::ImageTransform transform;
  std::string source;                // the checkpoint directory or timm:DIR
  VitRunConfig config;               // a run's config (for timm: the model and transform only)
};

// A run's checkpoint `which` (best | latest | step-N), or a timm directory ("timm:DIR"), exactly
// one of the two. Throws std::invalid_argument / std::runtime_error naming the flag or file.
Classifier load_classifier(const std::string& run, const std::string& init_from, const std::string& which,
                           torch::Device device);

// The weights of a run's checkpoint and its config, for --init-from RUN.
struct RunWeights {
  VitRunConfig config;
  std::vector<std::string> classes;
  std::map<std::string, torch::Tensor> tensors;
  std::filesystem::path checkpoint;
};
RunWeights load_run_weights(const std::filesystem::path& run, const std::string& which);

}  // namespace attnzoo::apps
