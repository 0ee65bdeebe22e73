#include "apps/vit-classify/run.h"

#include <stdexcept>

#include "engine/checkpoint.h"
#include "weights/state_dict.h"
#include "weights/timm_vit.h"

namespace attnzoo::apps {
namespace fs = std::filesystem;

VitRunConfig default_vit_run_config() {
  VitRunConfig cfg;
  auto& t = cfg.train;
  t.batch_size = 128;
  t.max_iters = 2000;
  t.lr = 1e-3;
  t.min_lr = 1e-5;
  t.warmup_iters = 100;
  t.weight_decay = 0.05;
  t.beta2 = 0.999;
  t.grad_clip = 1.0;
  t.eval_interval = 250;
  t.eval_iters = 0;  // 0: the whole test split (filled in once the data is open)
  cfg.augment.hflip = true;
  return cfg;
}

nlohmann::json to_json(const VitRunConfig& cfg) {
  return {{"model", cfg.model},         {"train", cfg.train},         {"data", cfg.data},
          {"augment", cfg.augment},     {"eval", cfg.eval},           {"init_from", cfg.init_from},
          {"freeze_backbone", cfg.freeze_backbone}, {"backbone_lr_scale", cfg.backbone_lr_scale}, {"train_subset", cfg.train_subset}};
}

void apply_json(VitRunConfig& cfg, const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw std::invalid_argument(source + ": expected a JSON object with \"model\" and \"train\"");
  try {
    for (const auto& [key, value] : j.items()) {
      if (key == "model") engine::merge_json(cfg.model, value, "model");
      else if (key == "train") engine::merge_json(cfg.train, value, "train");
      else if (key == "augment") cfg.augment = value.get<datasets::ImageTransform>();
      else if (key == "eval") cfg.eval = value.get<datasets::ImageTransform>();
      else if (key == "data" && value.is_string()) cfg.data = value.get<std::string>();
      else if (key == "init_from" && value.is_string()) cfg.init_from = value.get<std::string>();
      else if (key == "freeze_backbone" && value.is_boolean()) cfg.freeze_backbone = value.get<bool>();
      else if (key == "backbone_lr_scale" && value.is_number()) cfg.backbone_lr_scale = value.get<double>();
      else if (key == "train_subset" && value.is_number_integer()) cfg.train_subset = value.get<int64_t>();
      else
        throw std::invalid_argument("unknown key '" + key +
                                    "' (expected model, train, data, augment, eval, init_from, freeze_backbone, backbone_lr_scale, train_subset)");
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(source + ": " + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(source + ": " + e.what());
  }
}

RunWeights load_run_weights(const fs::path& run, const std::string& which) {
  if (!fs::is_directory(run)) throw std::runtime_error(run.string() + ": no such run directory");
  engine::CheckpointStore store(run);
  RunWeights out;
  out.checkpoint = which == "best" && !fs::is_directory(store.root() / "best") ? store.resolve("latest") : store.resolve(which);
  auto ckpt = engine::read_checkpoint(out.checkpoint);
  if (ckpt.model.count("mask_token") || ckpt.model.count("decoder_embed.weight"))
    throw std::invalid_argument(run.string() + ": an MAE pretraining run has no classifier; fine-tune it first "
                                "(vit-classify train --init-from mae:" + run.string() + ")");
  out.config = default_vit_run_config();
  apply_json(out.config, ckpt.config, (out.checkpoint / "config.json").string());
  if (ckpt.state.contains("classes")) out.classes = ckpt.state["classes"].get<std::vector<std::string>>();
  out.tensors = std::move(ckpt.model);
  return out;
}

Classifier load_classifier(const std::string& run, const std::string& init_from, const std::string& which,
                           torch::Device device) {
  if (run.empty() == init_from.empty()) throw std::invalid_argument("give exactly one of --run RUN and --init-from timm:DIR");
  Classifier c;
  if (!run.empty()) {
    auto w = load_run_weights(run, which);
    c.config = w.config;
    c.model = models::VisionTransformer(w.config.model);
    weights::load_state_dict(*c.model, w.tensors, /*strict=*/true, (w.checkpoint / "model.safetensors").string());
    c.classes = w.classes;
    c.transform = w.config.eval;
    c.source = w.checkpoint.string();
  } else {
    if (init_from.rfind("timm:", 0) != 0 || init_from.size() == 5)
      throw std::invalid_argument("--init-from: expected timm:DIR (a timm ViT download), got '" + init_from + "'");
    auto t = weights::load_timm_vit_dir(init_from.substr(5));
    c.config.model = t.config;
    c.model = models::VisionTransformer(t.config);
    weights::load_state_dict(*c.model, t.tensors, /*strict=*/true, init_from);
    c.classes = t.label_names;
    auto& tf = c.transform;
    tf.size = t.config.img_size;
    tf.channels = t.config.in_chans;
    tf.mean = t.preprocess.mean, tf.std = t.preprocess.std;
    tf.interpolation = t.preprocess.interpolation;
    tf.crop_pct = t.preprocess.crop_pct;
    c.config.eval = tf;
    c.source = init_from;
  }
  const int64_t K = c.model->cfg.num_classes;
  if (static_cast<int64_t>(c.classes.size()) != K) {
    c.classes.clear();
    for (int64_t k = 0; k < K; ++k) c.classes.push_back(std::to_string(k));
  }
  c.model->to(device);
  c.model->eval();
  return c;
}

}  // namespace attnzoo::apps
