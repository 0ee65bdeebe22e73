// Tests for the per-parameter learning-rate multiplier of engine::AdamW (set_lr_scales), which
// vit-classify uses for a lower backbone learning rate: scale 0 freezes, scale s scales Adam's
// first step (whose size is lr · sign(g)) by s.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "engine/adamw.h"

using namespace attnzoo::engine;

TEST(AdamWLrScale, ScalesEachParameter) {
  auto a = torch::zeros({3}).set_requires_grad(true), b = torch::zeros({3}).set_requires_grad(true),
       c = torch::zeros({3}).set_requires_grad(true);
  AdamW opt({}, {{"backbone.a", a}, {"backbone.b", b}, {"head.c", c}}, {0.9, 0.999, 1e-12, 0.0});
  opt.set_lr_scales([](const std::string& name) { return name == "backbone.a" ? 0.0 : name == "backbone.b" ? 0.1 : 1.0; });
  for (auto* p : {&a, &b, &c}) p->mutable_grad() = torch::ones({3});
  opt.step(0.5);
  EXPECT_TRUE(torch::allclose(a, torch::zeros({3})));
  EXPECT_TRUE(torch::allclose(b, torch::full({3}, -0.05)));
  EXPECT_TRUE(torch::allclose(c, torch::full({3}, -0.5)));
}
