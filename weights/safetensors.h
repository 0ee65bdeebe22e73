// safetensors read/write: the weight format that Hugging Face, timm and PyTorch tools exchange
// (https://github.com/huggingface/safetensors). A file is an 8-byte little-endian header length N,
// N bytes of JSON header {name: {dtype, shape, data_offsets: [begin, end)}, "__metadata__": {..}},
// then the data section the offsets point into. Checkpoints and weight importers build on this.
#pragma once

#include <map>
#include <string>

#include <torch/types.h>

namespace attnzoo::weights {

using TensorMap = std::map<std::string, torch::Tensor>;
using Metadata = std::map<std::string, std::string>;

struct Safetensors {
  TensorMap tensors;  // name -> CPU tensor, e.g. "transformer.wte.weight" -> (50257, 768) F32
  Metadata metadata;  // the header's "__metadata__", e.g. {"format": "pt"}
};

// Reads FILE. The whole header is validated before any tensor is made (dtype, shape, offsets inside
// the data section, no overlaps, byte counts matching dtype * shape); errors throw
// std::runtime_error("FILE: <what is wrong>"), naming the tensor where there is one.
// Tensors are zero-copy views into a private (copy-on-write) memory map of the file that they keep
// alive, so writing into them never changes the file; a tensor whose data is not aligned for its
// element type is copied instead.
Safetensors load_safetensors(const std::string& path);

// Writes FILE, replacing it (not atomically: callers write into a temporary directory and rename).
// Tensors are written contiguous from CPU; the header's keys are sorted and it is padded with spaces
// to a multiple of 8 bytes; METADATA is written as "__metadata__" when non-empty. Throws
// std::runtime_error naming FILE (and the tensor, for an unsupported dtype); a failed write
// (full disk, file-size limit) removes the partial file and throws "FILE: write failed: <reason>".
void save_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata = {});

}  // namespace attnzoo::weights
