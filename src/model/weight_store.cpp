#include "model/weight_store.h"

#include <simdjson.h>

#include <algorithm>
#include <map>
#include <system_error>

#include <fmt/format.h>

#include "model/json_util.h"
#include "model/safetensors_file.h"

namespace sluice {
namespace {

constexpr std::string_view kSingleFile = "model.safetensors";
constexpr std::string_view kIndexFile = "model.safetensors.index.json";

bool Exists(const std::filesystem::path& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

// A shard name from an index must stay inside the model directory.
bool IsPlainFileName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\\') == std::string_view::npos;
}

// Reads weight_map (tensor name -> shard file name) from a sharded model's index.
StatusOr<std::map<std::string, std::string, std::less<>>> ReadWeightMap(
    const std::filesystem::path& index_path) {
  simdjson::dom::parser parser;
  SLUICE_ASSIGN_OR_RETURN(simdjson::dom::element root, ParseJsonFile(parser, index_path));
  simdjson::dom::object weight_map;
  if (root["weight_map"].get_object().get(weight_map) != simdjson::SUCCESS) {
    return DataLoss(fmt::format("{}: no \"weight_map\" object", index_path.string()));
  }
  std::map<std::string, std::string, std::less<>> out;
  for (auto [tensor, shard_element] : weight_map) {
    std::string_view shard;
    if (shard_element.get_string().get(shard) != simdjson::SUCCESS || !IsPlainFileName(shard)) {
      return DataLoss(fmt::format("{}: tensor \"{}\" maps to an invalid shard file name",
                                  index_path.string(), tensor));
    }
    out.emplace(std::string(tensor), std::string(shard));
  }
  if (out.empty()) {
    return DataLoss(fmt::format("{}: \"weight_map\" is empty", index_path.string()));
  }
  return out;
}

}  // namespace

WeightStore::WeightStore() = default;
WeightStore::~WeightStore() = default;

StatusOr<std::vector<std::filesystem::path>> WeightStore::WeightFiles(
    const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    return NotFound(fmt::format("model directory {} not found", dir.string()));
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    return InvalidArgument(fmt::format("{} is not a directory", dir.string()));
  }
  if (Exists(dir / kSingleFile)) return std::vector<std::filesystem::path>{dir / kSingleFile};
  if (Exists(dir / kIndexFile)) {
    SLUICE_ASSIGN_OR_RETURN(auto weight_map, ReadWeightMap(dir / kIndexFile));
    std::vector<std::string> shards;
    for (const auto& [tensor, shard] : weight_map) shards.push_back(shard);
    std::sort(shards.begin(), shards.end());
    shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
    std::vector<std::filesystem::path> files;
    for (const std::string& shard : shards) files.push_back(dir / shard);
    return files;
  }
  if (Exists(dir / "pytorch_model.bin") || Exists(dir / "pytorch_model.bin.index.json")) {
    return InvalidArgument(fmt::format(
        "{}: pytorch_model.bin is not supported (pickle); convert it to model.safetensors, e.g. "
        "with python -c \"import torch; from safetensors.torch import save_file; "
        "save_file({{k: v.clone().contiguous() for k, v in torch.load('pytorch_model.bin', "
        "map_location='cpu', weights_only=True).items()}}, 'model.safetensors', "
        "metadata={{'format': 'pt'}})\"",
        dir.string()));
  }
  return NotFound(fmt::format("{} has no {} or {}", dir.string(), kSingleFile, kIndexFile));
}

StatusOr<std::unique_ptr<WeightStore>> WeightStore::Open(const std::filesystem::path& dir) {
  SLUICE_ASSIGN_OR_RETURN(std::vector<std::filesystem::path> paths, WeightFiles(dir));
  const bool sharded = !Exists(dir / kSingleFile);
  std::unique_ptr<WeightStore> store(new WeightStore());
  std::map<std::string, const SafetensorsFile*, std::less<>> by_file_name;
  for (const std::filesystem::path& path : paths) {
    StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
    if (!file.ok()) {
      if (file.status().code() == StatusCode::kNotFound && sharded) {
        return DataLoss(fmt::format("{}: shard {} listed in {} is missing", dir.string(),
                                    path.filename().string(), kIndexFile));
      }
      return file.status();
    }
    store->files_.push_back(std::make_unique<SafetensorsFile>(std::move(file).value()));
    by_file_name.emplace(path.filename().string(), store->files_.back().get());
  }
  if (sharded) {
    // Sharded: every tensor the index promises must be in the shard it names.
    SLUICE_ASSIGN_OR_RETURN(auto weight_map, ReadWeightMap(dir / kIndexFile));
    for (const auto& [tensor, shard] : weight_map) {
      auto it = by_file_name.find(shard);
      if (it == by_file_name.end() || it->second->Find(tensor) == nullptr) {
        return DataLoss(fmt::format("{}: tensor \"{}\" is listed in {} but missing from {}",
                                    dir.string(), tensor, kIndexFile, shard));
      }
    }
  }

  for (const auto& file : store->files_) {
    for (const TensorView& t : file->tensors()) store->sorted_.push_back(&t);
  }
  std::sort(store->sorted_.begin(), store->sorted_.end(),
            [](const TensorView* a, const TensorView* b) { return a->name < b->name; });
  for (size_t i = 1; i < store->sorted_.size(); ++i) {
    if (store->sorted_[i]->name == store->sorted_[i - 1]->name) {
      return DataLoss(fmt::format("{}: tensor \"{}\" is stored in more than one shard",
                                  dir.string(), store->sorted_[i]->name));
    }
  }
  return store;
}

const TensorView* WeightStore::Find(std::string_view name) const {
  auto it = std::lower_bound(sorted_.begin(), sorted_.end(), name,
                             [](const TensorView* t, std::string_view n) { return t->name < n; });
  if (it == sorted_.end() || (*it)->name != name) return nullptr;
  return *it;
}

std::vector<std::string> WeightStore::Names() const {
  std::vector<std::string> names;
  names.reserve(sorted_.size());
  for (const TensorView* t : sorted_) names.push_back(t->name);
  return names;
}

}  // namespace sluice
