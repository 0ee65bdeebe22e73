// Seeded, stateless example order for training loops that must resume exactly: example k of an
// endless stream is example perm_e[k mod n] of epoch e = k / n, where perm_e is a shuffle
// seeded by (seed, e). Nothing to save in a checkpoint but the step.
#pragma once

#include <cstdint>
#include <vector>

namespace attnzoo::datasets {

// A seed for one stream from (seed, a, b): splitmix64 (Steele et al. 2014) over the three.
uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b = 0);

// The order of the n examples in EPOCH: a Fisher-Yates shuffle seeded by (seed, epoch).
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace attnzoo::datasets
