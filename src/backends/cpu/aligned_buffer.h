// AlignedBuffer: an owned, 64-byte aligned float array (cache-line and AVX-512 aligned), the
// storage of the CPU backend's converted weights and workspaces.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>

namespace sluice::cpu {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;

  // An uninitialised buffer of `n` floats; empty() when n == 0 or the allocation failed.
  static AlignedBuffer Allocate(size_t n) {
    AlignedBuffer b;
    if (n == 0) return b;
    const size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    b.data_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    if (b.data_) b.size_ = n;
    return b;
  }

  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
  size_t size_ = 0;
};

}  // namespace sluice::cpu
