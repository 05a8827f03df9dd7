// WeightStore: every tensor of a model directory's safetensors file(s), memory-mapped.
// Handles a single model.safetensors and sharded model.safetensors.index.json layouts.
// Thread-safety: immutable after Open(); safe to share.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "model/tensor.h"

namespace sluice {

class SafetensorsFile;

class WeightStore {
 public:
  // Opens the weights of the model in `dir`. NotFound when there are none; a model with only
  // pytorch_model.bin gets an InvalidArgument saying that format is refused and how to convert.
  // Headers are validated (offsets in bounds, sizes match dtype x shape, no overlap).
  static StatusOr<std::unique_ptr<WeightStore>> Open(const std::filesystem::path& dir);

  // The safetensors files Open() maps for `dir`: model.safetensors, or the shards named by
  // model.safetensors.index.json (sorted, each once). Same NotFound / InvalidArgument rules as
  // Open(); the files themselves are not read.
  static StatusOr<std::vector<std::filesystem::path>> WeightFiles(const std::filesystem::path& dir);

  ~WeightStore();
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  // The tensor called `name`, or nullptr.
  const TensorView* Find(std::string_view name) const;
  // Every tensor name, sorted.
  std::vector<std::string> Names() const;

 private:
  WeightStore();

  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::vector<const TensorView*> sorted_;  // all tensors of all files, by name
};

}  // namespace sluice
