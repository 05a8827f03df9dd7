#include "tokenizer/tokenizer.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tokenizer/pipeline_tokenizer.h"

namespace sluice {

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::filesystem::path& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return InvalidArgument(path.string() + " is a directory, not a tokenizer.json");
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return NotFound("cannot read " + path.string() + ": " + std::strerror(errno));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) return DataLoss("error reading " + path.string());
  StatusOr<std::unique_ptr<Tokenizer>> tokenizer = FromJson(contents.str());
  if (!tokenizer.ok()) return tokenizer.status().WithContext(path.string());
  return tokenizer;
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view json) {
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<tokenizer::PipelineTokenizer> tokenizer,
                          tokenizer::PipelineTokenizer::Create(json));
  return std::unique_ptr<Tokenizer>(std::move(tokenizer));
}

}  // namespace sluice
