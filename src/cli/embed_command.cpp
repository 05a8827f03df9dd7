// `sluice embed`: UTF-8 lines on stdin -> one {"embedding":[...]} JSON object per line on
// stdout, in input order.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "backends/model_loader.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/gpu_flags.h"
#include "common/json_writer.h"
#include "engine/embedder.h"

namespace sluice::cli {
namespace {

struct EmbedArgs {
  std::string model;
  std::string device = "cpu";
  GpuFlags gpu;
  size_t batch_size = 32;
  int threads = 0;
  bool no_truncate = false;
};

Status WriteVectors(const std::vector<float>& vectors, int dim, std::string* buffer) {
  buffer->clear();
  const size_t rows = vectors.size() / static_cast<size_t>(dim);
  for (size_t r = 0; r < rows; ++r) {
    JsonWriter w(buffer);
    w.BeginObject();
    w.Key("embedding");
    w.FloatArray(std::span<const float>(vectors.data() + r * dim, static_cast<size_t>(dim)));
    w.EndObject();
    buffer->push_back('\n');
  }
  if (std::fwrite(buffer->data(), 1, buffer->size(), stdout) != buffer->size()) {
    return Unavailable("cannot write to standard output");
  }
  return Status::Ok();
}

Status RunEmbed(const EmbedArgs& args) {
  LoadOptions load;
  load.model_dir = args.model;
  SLUICE_ASSIGN_OR_RETURN(load.device, DeviceSpec::Parse(args.device));
  load.cpu_threads = args.threads;
  ApplyGpuFlags(args.gpu, &load);
  load.limits.max_batch_requests = args.batch_size;
  SLUICE_ASSIGN_OR_RETURN(LoadedModel model, LoadModel(load));

  EmbedderOptions options;
  options.max_seq_length = static_cast<size_t>(model.dir.max_seq_length);
  options.truncate = !args.no_truncate;
  options.normalize = model.dir.normalize;
  Embedder embedder(*model.tokenizer, *model.backend, options);

  std::vector<std::string> lines;
  std::vector<float> vectors;
  std::string buffer;
  size_t first_line = 1;  // 1-based number of lines[0] in the input
  auto flush = [&]() -> Status {
    Status s = embedder.Embed(lines, &vectors);
    if (!s.ok()) return RenumberInputError(s, first_line);
    SLUICE_RETURN_IF_ERROR(WriteVectors(vectors, embedder.embedding_dim(), &buffer));
    first_line += lines.size();
    lines.clear();
    return Status::Ok();
  };
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    if (lines.size() == args.batch_size) SLUICE_RETURN_IF_ERROR(flush());
  }
  if (!lines.empty()) SLUICE_RETURN_IF_ERROR(flush());
  std::fflush(stdout);
  return Status::Ok();
}

}  // namespace

void AddEmbedCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<EmbedArgs>();
  CLI::App* cmd = app.add_subcommand(
      "embed", "Embed UTF-8 lines from stdin; one {\"embedding\":[...]} JSON line out per line");
  cmd->add_option("--model", args->model, "Model directory (Hugging Face layout)")
      ->required()
      ->envname("SLUICE_MODEL");
  cmd->add_option("--device", args->device, "cpu, cuda or cuda:N")
      ->capture_default_str()
      ->envname("SLUICE_DEVICE");
  AddGpuOptions(cmd, &args->gpu);
  cmd->add_option("--batch-size", args->batch_size, "Lines per forward pass")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--threads", args->threads, "CPU threads (0 = all cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  cmd->add_flag("--no-truncate", args->no_truncate,
                "Refuse inputs longer than the model's max_seq_length instead of cutting them");
  cmd->callback([args, exit_code] { *exit_code = ReportStatus(RunEmbed(*args)); });
}

}  // namespace sluice::cli
