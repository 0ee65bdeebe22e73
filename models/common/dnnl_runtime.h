// The oneDNN CPU engine that the models' own primitives (gemm.cpp, gelu.cpp) run on, and running
// one primitive to completion on the calling thread's stream. Only in builds with oneDNN
// (ATTNZOO_HAVE_DNNL).
#pragma once

#ifdef ATTNZOO_HAVE_DNNL
#include <unordered_map>

#include <oneapi/dnnl/dnnl.hpp>

namespace attnzoo::models {

dnnl::engine& dnnl_cpu_engine();

// Executes `p` with `args` and waits for it.
void dnnl_run(const dnnl::primitive& p, const std::unordered_map<int, dnnl::memory>& args);

}  // namespace attnzoo::models
#endif
