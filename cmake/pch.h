// Precompiled header for every target that uses LibTorch (option ATTNZOO_PCH).
#pragma once
#include <torch/torch.h>
