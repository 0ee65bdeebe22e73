// State dicts of LibTorch modules: a module's parameters and buffers by dotted name
// ("h.0.attn.c_attn.weight"), and loading a name -> tensor map back into a module with a report of
// missing, unexpected and shape-mismatched keys, as PyTorch's Module.load_state_dict does.
#pragma once

#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "weights/safetensors.h"

namespace attnzoo::weights {

// Parameters, then buffers, of MODULE by dotted name (as named_parameters()/named_buffers()),
// detached from autograd but sharing storage. A tensor registered under several names (tied
// weights, e.g. a GPT head tied to wte) appears once, under its first name.
TensorMap state_dict(const torch::nn::Module& module);

struct LoadReport {
  std::vector<std::string> missing;     // in the module, not in the file, e.g. "fc.bias"
  std::vector<std::string> unexpected;  // in the file, not in the module
  std::vector<std::string> mismatched;  // "fc.weight: expected [3, 4], got [4, 3]"
  bool ok() const;                      // all three empty
  // One line, e.g. "missing key(s): a, b; unexpected key(s): c; size mismatch: w: expected [3], got [4]";
  // long lists end in ", ... (N more)".
  std::string summary() const;
};

// Copies TENSORS into MODULE's parameters and buffers by name, converting dtype and device as needed
// (a bf16 file into fp32 parameters, a CPU file into a CUDA module). Shape-mismatched keys are not
// copied. A missing key is not reported when the same tensor is present under a tied name.
// strict: if the report is not ok(), throws std::runtime_error(SOURCE + ": " + summary()) before
// copying anything, leaving the module untouched. Not strict: copies what matches and returns the report.
LoadReport load_state_dict(torch::nn::Module& module, const TensorMap& tensors, bool strict = true,
                           const std::string& source = "state dict");

}  // namespace attnzoo::weights
