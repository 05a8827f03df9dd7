// `sluice vectorize`: embeds a text column of an existing table into a vector column, in
// batches, resumable (only rows whose target is NULL are read). Progress goes to stderr: a bar
// on a terminal, a line every few seconds otherwise.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "backends/model_loader.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/gpu_flags.h"
#include "engine/embedder.h"
#include "pg/pg_connection.h"
#include "worker/vectorizer.h"

namespace sluice::cli {
namespace {

struct VectorizeArgs {
  std::string database_url;
  std::string table;
  std::string id_column = "id";
  std::string text_column;
  std::string target_column;
  size_t batch_size = 64;
  std::string model;
  std::string device = "cpu";
  GpuFlags gpu;
  int threads = 0;
};

// Draws "[#####.....]  1200/5000 rows  24%  310 rows/s" on a terminal (redrawn in place) or
// writes "vectorize: 1200/5000 rows (24%), 310 rows/s" lines at most every 5 s otherwise.
class ProgressReporter {
 public:
  explicit ProgressReporter(int64_t total)
      : total_(total), tty_(isatty(STDERR_FILENO) == 1), start_(Clock::now()), last_(start_) {}

  void Update(int64_t done, bool final = false) {
    auto now = Clock::now();
    if (!final && !tty_ && now - last_ < std::chrono::seconds(5)) return;
    if (!final && tty_ && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    double seconds = std::chrono::duration<double>(now - start_).count();
    double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
    int64_t total = std::max(total_, done);
    int percent = total > 0 ? static_cast<int>(100 * done / total) : 100;
    if (tty_) {
      constexpr int kWidth = 30;
      int filled = kWidth * percent / 100;
      std::string bar(static_cast<size_t>(filled), '#');
      bar.append(static_cast<size_t>(kWidth - filled), '.');
      std::fprintf(stderr, "\r[%s] %lld/%lld rows %3d%% %.0f rows/s%s", bar.c_str(),
                   static_cast<long long>(done), static_cast<long long>(total), percent, rate,
                   final ? "\n" : "");
    } else {
      std::fprintf(stderr, "vectorize: %lld/%lld rows (%d%%), %.0f rows/s\n",
                   static_cast<long long>(done), static_cast<long long>(total), percent, rate);
    }
    std::fflush(stderr);
  }

 private:
  using Clock = std::chrono::steady_clock;
  const int64_t total_;
  const bool tty_;
  const Clock::time_point start_;
  Clock::time_point last_;
};

Status RunVectorize(const VectorizeArgs& args) {
  PgConnectionOptions pg;
  pg.dsn = args.database_url;
  pg.application_name = "sluice vectorize";
  // A count(*) or a batch's UPDATE on a large table may take long; the client deadline stays.
  pg.statement_timeout = std::chrono::minutes(10);
  SLUICE_ASSIGN_OR_RETURN(PgConnection conn, PgConnection::Connect(pg));

  LoadOptions load;
  load.model_dir = args.model;
  SLUICE_ASSIGN_OR_RETURN(load.device, DeviceSpec::Parse(args.device));
  load.cpu_threads = args.threads;
  ApplyGpuFlags(args.gpu, &load);
  load.limits.max_batch_requests = args.batch_size;
  SLUICE_ASSIGN_OR_RETURN(LoadedModel model, LoadModel(load));
  EmbedderOptions embed;
  embed.max_seq_length = static_cast<size_t>(model.dir.max_seq_length);
  embed.normalize = model.dir.normalize;
  Embedder embedder(*model.tokenizer, *model.backend, embed);

  VectorizerOptions options;
  options.table = args.table;
  options.id_column = args.id_column;
  options.text_column = args.text_column;
  options.target_column = args.target_column;
  options.batch_size = args.batch_size;
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<Vectorizer> vectorizer,
                          Vectorizer::Create(options, std::move(conn), &embedder));
  SLUICE_ASSIGN_OR_RETURN(int64_t pending, vectorizer->CountPending());
  ProgressReporter progress(pending);
  int64_t written = 0;
  Status run = vectorizer
                   ->Run([&](int64_t done) {
                     written = done;
                     progress.Update(done);
                   })
                   .status();
  progress.Update(written, /*final=*/true);
  SLUICE_RETURN_IF_ERROR(run);
  std::printf("vectorize: %lld rows of %s embedded into %s (%s)\n", static_cast<long long>(written),
              args.table.c_str(), args.target_column.c_str(),
              vectorizer->target().type == VectorColumnType::kPgVector ? "vector" : "real[]");
  return Status::Ok();
}

}  // namespace

void AddVectorizeCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<VectorizeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "vectorize", "Embed a text column of a PostgreSQL table into a real[] or vector column");
  cmd->add_option("--database-url", args->database_url,
                  "PostgreSQL connection string (postgresql://user@host/db or key=value)")
      ->envname("SLUICE_DATABASE_URL")
      ->required();
  cmd->add_option("--table", args->table, "Table, as name or schema.name (case-sensitive)")
      ->required();
  cmd->add_option("--id-column", args->id_column, "Unique, orderable key (the primary key)")
      ->capture_default_str();
  cmd->add_option("--text-column", args->text_column, "Column holding the text")->required();
  cmd->add_option("--target-column", args->target_column,
                  "real[] or vector(n) column to fill; only rows where it is NULL are embedded")
      ->required();
  cmd->add_option("--batch-size", args->batch_size, "Rows per read, forward pass and update")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd->add_option("--model", args->model, "Model directory")->required()->envname("SLUICE_MODEL");
  cmd->add_option("--device", args->device, "cpu, cuda or cuda:N")->capture_default_str();
  AddGpuOptions(cmd, &args->gpu);
  cmd->add_option("--threads", args->threads, "CPU threads (0: all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->callback([args, exit_code] { *exit_code = ReportStatus(RunVectorize(*args)); });
}

}  // namespace sluice::cli
