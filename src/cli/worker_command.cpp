// `sluice worker`: drains the PostgreSQL job queue with one model. Checks the database (URL,
// reachability, schema version) before loading the model, so a misconfigured worker fails in
// a second with one line; stops gracefully on SIGTERM/SIGINT after finishing its batch.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backends/model_loader.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/gpu_flags.h"
#include "common/logging.h"
#include "pg/pg_job_queue.h"
#include "pg/pg_listener.h"
#include "pg/pg_pool.h"
#include "scheduler/dynamic_batcher.h"
#include "worker/job_worker.h"

namespace sluice::cli {
namespace {

struct WorkerArgs {
  std::string model;
  std::vector<std::string> served_model_names;
  std::string database_url;
  std::string device = "cpu";
  GpuFlags gpu;
  int backend_threads = 0;
  int lease_seconds = 60;
  int batch_jobs = 0;
  int64_t poll_interval_ms = 2000;
  int reclaim_interval_seconds = 10;
  int64_t retention_seconds = 86400;
  int cleanup_interval_seconds = 300;
  size_t max_batch_tokens = 16384;
  size_t max_batch_requests = 64;
  int64_t max_queue_delay_us = 2000;
  std::string worker_id;
};

std::string DefaultWorkerId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof(suffix), "%04x", rd() & 0xffffu);
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + suffix;
}

// Set by the SIGTERM/SIGINT handler; a lock-free atomic store is async-signal-safe.
std::atomic<bool> g_stop_signal{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void OnStopSignal(int) { g_stop_signal.store(true); }

// Turns SIGTERM/SIGINT into a call of `on_signal` on a thread of its own (whichever thread the
// kernel delivers the signal to, the handler only sets a flag that this thread polls).
class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void()> on_signal) : on_signal_(std::move(on_signal)) {
    struct sigaction action = {};
    action.sa_handler = OnStopSignal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGINT, &action, nullptr);
    thread_ = std::thread([this] {
      while (!done_.load()) {
        if (g_stop_signal.exchange(false)) on_signal_();
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  ~SignalWatcher() {
    done_.store(true);
    thread_.join();
  }
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  std::function<void()> on_signal_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

Status RunWorker(const WorkerArgs& args) {
  std::mutex mu;
  bool stop_requested = false;   // GUARDED_BY(mu)
  JobWorker* running = nullptr;  // GUARDED_BY(mu)
  SignalWatcher signals([&] {
    std::lock_guard<std::mutex> lock(mu);
    if (!stop_requested) SLUICE_LOG_INFO("stopping: finishing the current batch");
    stop_requested = true;
    if (running != nullptr) running->Stop();
  });

  PgPoolOptions pool_options;
  pool_options.connection.dsn = args.database_url;
  pool_options.connection.application_name = "sluice worker";
  pool_options.max_size = 4;
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<PgPool> pool_owner, PgPool::Create(pool_options));
  std::shared_ptr<PgPool> pool(std::move(pool_owner));
  // Connects and checks the schema version.
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<PgJobQueue> queue, PgJobQueue::Create(pool));

  LoadOptions load;
  load.model_dir = args.model;
  SLUICE_ASSIGN_OR_RETURN(load.device, DeviceSpec::Parse(args.device));
  load.cpu_threads = args.backend_threads;
  ApplyGpuFlags(args.gpu, &load);
  load.limits.max_batch_tokens = args.max_batch_tokens;
  load.limits.max_batch_requests = args.max_batch_requests;
  SLUICE_ASSIGN_OR_RETURN(LoadedModel model, LoadModel(load));
  const size_t max_input =
      static_cast<size_t>(model.dir.max_seq_length > 0 ? model.dir.max_seq_length
                                                       : model.config.max_position_embeddings);
  if (args.max_batch_tokens < max_input) {
    return InvalidArgument("--max-batch-tokens (" + std::to_string(args.max_batch_tokens) +
                           ") must hold one input of the maximum length (" +
                           std::to_string(max_input) + ")");
  }

  DynamicBatcherOptions batcher_options;
  batcher_options.policy.max_batch_tokens = args.max_batch_tokens;
  batcher_options.policy.max_batch_requests = args.max_batch_requests;
  batcher_options.policy.max_queue_delay = std::chrono::microseconds(args.max_queue_delay_us);
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<DynamicBatcher> batcher,
                          DynamicBatcher::Create(batcher_options, {model.backend.get()}));

  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<PgListener> listener,
                          PgListener::Create(pool_options.connection, "sluice_jobs"));

  JobWorkerOptions options;
  options.worker_id = args.worker_id.empty() ? DefaultWorkerId() : args.worker_id;
  options.models = args.served_model_names;
  if (options.models.empty()) options.models.push_back(model.dir.name);
  options.batch_jobs =
      args.batch_jobs > 0 ? args.batch_jobs : static_cast<int>(args.max_batch_requests);
  options.lease = std::chrono::seconds(args.lease_seconds);
  options.poll_interval = std::chrono::milliseconds(args.poll_interval_ms);
  options.reclaim_interval = std::chrono::seconds(args.reclaim_interval_seconds);
  options.retention = std::chrono::seconds(args.retention_seconds);
  options.cleanup_interval = std::chrono::seconds(args.cleanup_interval_seconds);
  options.max_input_length = max_input;
  options.normalize = model.dir.normalize;
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<JobWorker> worker,
                          JobWorker::Create(options, queue.get(), listener.get(),
                                            model.tokenizer.get(), batcher.get()));
  {
    std::lock_guard<std::mutex> lock(mu);
    running = worker.get();
    if (stop_requested) worker->Stop();
  }
  SLUICE_LOG_INFO("model {} loaded on {}; serving jobs for '{}'", model.dir.name,
                  model.backend->name(), options.models.front());
  worker->Run();
  {
    std::lock_guard<std::mutex> lock(mu);
    running = nullptr;
  }
  batcher->Stop();
  return Status::Ok();
}

}  // namespace

void AddWorkerCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<WorkerArgs>();
  CLI::App* cmd =
      app.add_subcommand("worker", "Compute the jobs of the PostgreSQL queue (sluice.jobs)");
  cmd->add_option("--model", args->model, "Model directory")->required()->envname("SLUICE_MODEL");
  cmd->add_option("--database-url", args->database_url,
                  "PostgreSQL connection string (postgresql://user@host/db or key=value)")
      ->envname("SLUICE_DATABASE_URL")
      ->required();
  cmd->add_option("--served-model-name", args->served_model_names,
                  "Model names of the jobs this worker takes (default: the directory's name)")
      ->envname("SLUICE_SERVED_MODEL_NAME");
  cmd->add_option("--device", args->device, "cpu, cuda or cuda:N")
      ->envname("SLUICE_DEVICE")
      ->capture_default_str();
  AddGpuOptions(cmd, &args->gpu);
  cmd->add_option("--backend-threads", args->backend_threads,
                  "CPU threads per forward pass (0: all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--lease-seconds", args->lease_seconds,
                  "How long a claimed job stays ours without a heartbeat")
      ->envname("SLUICE_LEASE_SECONDS")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  cmd->add_option("--batch-jobs", args->batch_jobs,
                  "Jobs per claim (0: --max-batch-requests, one batch's worth)")
      ->envname("SLUICE_BATCH_JOBS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--poll-interval-ms", args->poll_interval_ms,
                  "Longest wait between claims when no notification arrives")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--reclaim-interval-seconds", args->reclaim_interval_seconds,
                  "How often expired leases are put back to pending")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--retention-seconds", args->retention_seconds,
                  "Completed and cancelled jobs older than this are deleted (0: keep them)")
      ->envname("SLUICE_JOB_RETENTION_SECONDS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--cleanup-interval-seconds", args->cleanup_interval_seconds,
                  "How often old jobs are deleted")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-batch-tokens", args->max_batch_tokens,
                  "A batch closes when it holds this many tokens")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-batch-requests", args->max_batch_requests, "... or this many sequences")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-queue-delay-us", args->max_queue_delay_us,
                  "... or its oldest sequence has waited this long (microseconds)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--worker-id", args->worker_id,
                  "Name stored with claimed jobs (default: host:pid:random)");
  cmd->callback([args, exit_code] { *exit_code = ReportStatus(RunWorker(*args)); });
}

}  // namespace sluice::cli
