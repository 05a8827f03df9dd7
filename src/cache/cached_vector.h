// CachedVector: how the cache layer holds one finished result. Immutable and shared, so a hit
// hands out a reference instead of copying floats under a shard lock, and an entry evicted
// while a response still reads it stays alive until that response is done.
// Thread-safety: the vector is const, so any number of threads may read one CachedVector.
#pragma once

#include <memory>
#include <vector>

namespace sluice {

using CachedVector = std::shared_ptr<const std::vector<float>>;

inline CachedVector MakeCachedVector(std::vector<float> values) {
  return std::make_shared<const std::vector<float>>(std::move(values));
}

}  // namespace sluice
