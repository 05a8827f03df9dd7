// `sluice serve`: the HTTP server. Listens at once (so /health answers and /ready says 503),
// loads the model on a second thread, then publishes the embedding service.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "backends/model_loader.h"
#include "cache/lru_cache.h"
#include "cache/tiered_cache.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/gpu_flags.h"
#include "common/logging.h"
#include "engine/encoder_config.h"
#include "metrics/metrics_registry.h"
#include "pg/pg_cache_store.h"
#include "pg/pg_job_queue.h"
#include "pg/pg_pool.h"
#include "scheduler/dynamic_batcher.h"
#include "server/api_context.h"
#include "server/embedding_service.h"
#include "server/http_server.h"
#include "server/job_routes.h"
#include "server/routes.h"
#include "server/server_metrics.h"

namespace sluice::cli {
namespace {

struct ServeFlags {
  std::string model;
  std::vector<std::string> served_model_names;
  std::string device = "cpu";
  GpuFlags gpu;
  std::string devices;
  std::string host = "0.0.0.0";
  uint16_t port = 8080;
  int io_threads = 2;
  int backend_threads = 0;
  size_t max_batch_tokens = 16384;
  size_t max_batch_requests = 64;
  int64_t max_queue_delay_us = 2000;
  size_t max_concurrent_requests = 512;
  size_t max_client_batch_size = 512;
  size_t payload_limit = 2000000;
  size_t max_input_length = 0;
  bool auto_truncate = false;
  int64_t request_timeout_ms = 30000;
  int64_t header_timeout_ms = 10000;
  int64_t idle_timeout_ms = 60000;
  int64_t shutdown_grace_ms = 30000;
  size_t cache_bytes = size_t{256} << 20;
  int64_t cache_ttl_seconds = 0;
  std::string database_url;
};

// What --database-url adds: the shared cache tier and the job queue with its routes.
struct Database {
  std::shared_ptr<PgPool> pool;
  std::unique_ptr<PgCacheStore> cache_store;
  std::unique_ptr<PgJobQueue> queue;
};

// Connects, checks the schema version, and creates the cache store and the job queue.
StatusOr<std::unique_ptr<Database>> OpenDatabase(const std::string& url) {
  PgPoolOptions options;
  options.connection.dsn = url;
  options.connection.application_name = "sluice serve";
  options.max_size = 8;
  auto db = std::make_unique<Database>();
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<PgPool> pool, PgPool::Create(options));
  db->pool = std::move(pool);
  SLUICE_ASSIGN_OR_RETURN(db->queue, PgJobQueue::Create(db->pool));
  SLUICE_ASSIGN_OR_RETURN(db->cache_store, PgCacheStore::Create(db->pool));
  return db;
}

// Counters of the two cache tiers beside the ones ServerMetrics keeps; a bypassed shared tier
// shows up here.
Status AddSharedCacheMetrics(metrics::MetricsRegistry* registry, const TieredCache* cache,
                             const PgCacheStore* store) {
  struct Read {
    const char* name;
    const char* help;
    std::function<double()> read;
  };
  const Read reads[] = {
      {"sluice_cache_l1_hits_total", "Inputs found in the in-process cache",
       [cache] { return static_cast<double>(cache->Stats().l1_hits); }},
      {"sluice_cache_l2_hits_total", "Inputs found in the PostgreSQL cache tier",
       [cache] { return static_cast<double>(cache->Stats().l2_hits); }},
      {"sluice_cache_shared_unavailable_total",
       "Lookups that skipped the PostgreSQL tier because it was slow or down",
       [store] { return static_cast<double>(store->stats().bypassed); }},
      {"sluice_cache_shared_dropped_total", "Cache entries not written to PostgreSQL",
       [store] { return static_cast<double>(store->stats().dropped); }},
      {"sluice_cache_shared_written_total", "Cache entries written to PostgreSQL",
       [store] { return static_cast<double>(store->stats().written); }},
  };
  for (const Read& r : reads) {
    SLUICE_RETURN_IF_ERROR(registry->AddCallbackCounter(r.name, r.help, r.read));
  }
  return Status::Ok();
}

// Everything the model needs to stay alive while it serves.
struct ServingModel {
  LoadedReplicas model;
  std::unique_ptr<DynamicBatcher> batcher;
  std::unique_ptr<EmbeddingService> service;
};

// The engine replicas to create: --devices (one per GPU) when given, else --device.
StatusOr<std::vector<DeviceSpec>> ReplicaDevices(const ServeFlags& flags) {
  if (!flags.devices.empty()) return DeviceSpec::ParseGpuList(flags.devices);
  SLUICE_ASSIGN_OR_RETURN(DeviceSpec device, DeviceSpec::Parse(flags.device));
  return std::vector<DeviceSpec>{device};
}

StatusOr<std::unique_ptr<ServingModel>> LoadServingModel(const ServeFlags& flags,
                                                         std::span<const DeviceSpec> devices,
                                                         TieredCache* cache, ServerMetrics* metrics,
                                                         ApiContext* context) {
  // The longest input decides the warm-up shapes, so it is known before the backends exist.
  SLUICE_ASSIGN_OR_RETURN(ModelDir probe, ModelDir::Open(flags.model));
  SLUICE_ASSIGN_OR_RETURN(EncoderConfig probe_config, EncoderConfig::FromHf(probe.config));
  size_t model_max = probe.max_seq_length > 0
                         ? static_cast<size_t>(probe.max_seq_length)
                         : static_cast<size_t>(probe_config.max_sequence_length());
  size_t max_input =
      flags.max_input_length > 0 ? std::min(flags.max_input_length, model_max) : model_max;
  if (flags.max_batch_tokens < max_input) {
    return InvalidArgument("--max-batch-tokens (" + std::to_string(flags.max_batch_tokens) +
                           ") must hold one input of the maximum length (" +
                           std::to_string(max_input) + ")");
  }

  auto serving = std::make_unique<ServingModel>();
  LoadOptions load;
  load.model_dir = flags.model;
  load.cpu_threads = flags.backend_threads;
  ApplyGpuFlags(flags.gpu, &load);
  load.limits.max_batch_tokens = flags.max_batch_tokens;
  load.limits.max_batch_requests = flags.max_batch_requests;
  load.limits.max_sequence_length = max_input;
  SLUICE_ASSIGN_OR_RETURN(serving->model, LoadReplicas(load, devices));
  const ModelDir& dir = serving->model.dir;

  DynamicBatcherOptions batcher_options;
  batcher_options.policy.max_batch_tokens = flags.max_batch_tokens;
  batcher_options.policy.max_batch_requests = flags.max_batch_requests;
  batcher_options.policy.max_queue_delay = std::chrono::microseconds(flags.max_queue_delay_us);
  if (metrics != nullptr) {
    batcher_options.on_batch = [metrics](const BatchStats& stats) { metrics->OnBatch(stats); };
  }
  std::vector<Backend*> replicas;
  for (const auto& backend : serving->model.backends) replicas.push_back(backend.get());
  SLUICE_ASSIGN_OR_RETURN(serving->batcher, DynamicBatcher::Create(batcher_options, replicas));

  EmbeddingServiceOptions service_options;
  service_options.max_input_length = max_input;
  service_options.max_client_batch_size = flags.max_client_batch_size;
  service_options.max_concurrent_requests = flags.max_concurrent_requests;
  service_options.auto_truncate = flags.auto_truncate;
  service_options.normalize = dir.normalize;
  if (metrics != nullptr) {
    service_options.on_tokenized = [metrics](std::chrono::nanoseconds elapsed,
                                             const std::vector<Encoding>& encodings) {
      metrics->OnTokenized(elapsed, encodings);
    };
  }
  service_options.cache.cache = cache;
  service_options.cache.model_id = dir.name;
  service_options.cache.revision = dir.revision;
  service_options.cache.pooling = dir.pooling;
  service_options.cache.model_version = dir.cache_key();
  SLUICE_ASSIGN_OR_RETURN(serving->service, EmbeddingService::Create(std::move(service_options),
                                                                     serving->model.tokenizer.get(),
                                                                     serving->batcher.get()));

  ModelDescription& m = context->model;
  m.id = dir.name;
  m.served_names = flags.served_model_names;
  if (m.served_names.empty()) m.served_names.push_back(dir.name);
  m.backend.clear();
  for (Backend* b : replicas) m.backend += (m.backend.empty() ? "" : ",") + b->name();
  m.embedding_dim = serving->batcher->embedding_dim();
  m.max_input_length = max_input;
  m.normalize = dir.normalize;
  context->health = [replicas] {
    for (Backend* b : replicas) SLUICE_RETURN_IF_ERROR(b->Health());
    return Status::Ok();
  };
  context->service.store(serving->service.get(), std::memory_order_release);
  SLUICE_LOG_INFO("model {} ready: dim {}, max input {} tokens, {} replica(s) on {}, cache {}",
                  dir.name, m.embedding_dim, max_input, replicas.size(), m.backend,
                  cache == nullptr ? "off" : "on");
  return serving;
}

// The result cache (in process, then `store` when set), or null when --cache-bytes is 0.
StatusOr<std::unique_ptr<TieredCache>> MakeCache(const ServeFlags& flags, CacheStore* store) {
  if (flags.cache_bytes == 0) return std::unique_ptr<TieredCache>();
  if (flags.cache_ttl_seconds < 0) return InvalidArgument("--cache-ttl-seconds must be >= 0");
  LruCacheOptions options;
  options.capacity_bytes = flags.cache_bytes;
  options.ttl = std::chrono::seconds(flags.cache_ttl_seconds);
  StatusOr<std::unique_ptr<LruCache>> l1 = LruCache::Create(options);
  if (!l1.ok()) return l1.status().WithContext("--cache-bytes/--cache-ttl-seconds");
  return std::make_unique<TieredCache>(std::move(l1).value(), store);
}

int Serve(const ServeFlags& flags) {
  StatusOr<std::vector<DeviceSpec>> devices = ReplicaDevices(flags);
  if (!devices.ok()) return ReportStatus(devices.status());
  // The database is checked before anything listens, so a bad URL or an old schema stops the
  // server at once with one line.
  std::unique_ptr<Database> db;
  if (!flags.database_url.empty()) {
    StatusOr<std::unique_ptr<Database>> opened = OpenDatabase(flags.database_url);
    if (!opened.ok()) return ReportStatus(opened.status());
    db = std::move(opened).value();
  }
  StatusOr<std::unique_ptr<TieredCache>> cache =
      MakeCache(flags, db ? db->cache_store.get() : nullptr);
  if (!cache.ok()) return ReportStatus(cache.status());

  ApiContext context;
  context.limits.request_timeout = std::chrono::milliseconds(flags.request_timeout_ms);
  context.limits.payload_limit = flags.payload_limit;
  context.limits.max_batch_tokens = flags.max_batch_tokens;
  context.limits.max_batch_requests = flags.max_batch_requests;
  context.limits.max_client_batch_size = flags.max_client_batch_size;
  context.limits.max_concurrent_requests = flags.max_concurrent_requests;

  Router router;
  AddOpenAiRoutes(&router, &context);
  AddTeiRoutes(&router, &context);
  AddAdminRoutes(&router, &context);

  metrics::MetricsRegistry registry;
  StatusOr<std::unique_ptr<ServerMetrics>> metrics =
      ServerMetrics::Create(&registry, &router, &context, cache->get());
  if (!metrics.ok()) return ReportStatus(metrics.status());
  context.metrics_text = [&registry] { return registry.Exposition(); };
  std::unique_ptr<JobRoutes> job_routes;
  if (db) {
    if (*cache) {
      Status s = AddSharedCacheMetrics(&registry, cache->get(), db->cache_store.get());
      if (!s.ok()) return ReportStatus(s);
    }
    StatusOr<std::unique_ptr<JobRoutes>> routes = JobRoutes::Create(&context, db->queue.get());
    if (!routes.ok()) return ReportStatus(routes.status());
    job_routes = std::move(routes).value();
    job_routes->Register(&router);
  }

  HttpServerOptions http;
  http.host = flags.host;
  http.port = flags.port;
  http.io_threads = flags.io_threads;
  http.payload_limit = flags.payload_limit;
  http.header_timeout = std::chrono::milliseconds(flags.header_timeout_ms);
  http.idle_timeout = std::chrono::milliseconds(flags.idle_timeout_ms);
  http.shutdown_grace = std::chrono::milliseconds(flags.shutdown_grace_ms);
  http.handle_signals = true;
  ServerMetrics* observer = metrics->get();
  http.on_response = [observer](const HttpRequest& request, int status) {
    observer->OnResponse(request, status);
  };

  StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Create(http, &router);
  if (!server.ok()) {
    SLUICE_LOG_ERROR("sluice serve: {}", server.status().ToString());
    return 1;
  }
  SLUICE_LOG_INFO("listening on {}:{} ({} I/O threads)", flags.host, (*server)->port(),
                  flags.io_threads);

  std::unique_ptr<ServingModel> model;
  Status load_status;
  std::thread loader([&] {
    StatusOr<std::unique_ptr<ServingModel>> loaded =
        LoadServingModel(flags, *devices, cache->get(), observer, &context);
    if (loaded.ok()) {
      model = std::move(loaded).value();
    } else {
      load_status = loaded.status();
      SLUICE_LOG_ERROR("cannot load model {}: {}", flags.model, load_status.ToString());
      (*server)->Shutdown();
    }
  });
  (*server)->Run();
  loader.join();
  // Connections are closed; finish whatever is still queued, then free the model.
  if (model) model->batcher->Stop();
  SLUICE_LOG_INFO("stopped");
  return load_status.ok() ? 0 : 1;
}

}  // namespace

void AddServeCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve embeddings over HTTP (OpenAI and TEI APIs)");
  cmd->add_option("--model", flags->model, "Model directory")->required()->envname("SLUICE_MODEL");
  cmd->add_option("--served-model-name", flags->served_model_names,
                  "Names accepted in a request's \"model\" (default: the model directory's name)")
      ->envname("SLUICE_SERVED_MODEL_NAME");
  cmd->add_option("--device", flags->device, "cpu, cuda or cuda:N: one engine replica")
      ->envname("SLUICE_DEVICE")
      ->capture_default_str();
  AddGpuOptions(cmd, &flags->gpu);
  cmd->add_option("--devices", flags->devices,
                  "GPUs to serve on, one engine replica each: ordinals (0,1) or all; "
                  "overrides --device")
      ->envname("SLUICE_DEVICES");
  cmd->add_option("--host", flags->host, "Listen address")
      ->envname("SLUICE_HOST")
      ->capture_default_str();
  cmd->add_option("--port", flags->port, "Listen port")
      ->envname("SLUICE_PORT")
      ->capture_default_str();
  cmd->add_option("--io-threads", flags->io_threads, "HTTP I/O threads (parse, tokenize, write)")
      ->envname("SLUICE_IO_THREADS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--backend-threads", flags->backend_threads,
                  "CPU threads per forward pass (0: all cores)")
      ->envname("SLUICE_BACKEND_THREADS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--max-batch-tokens", flags->max_batch_tokens,
                  "A batch closes when it holds this many tokens")
      ->envname("SLUICE_MAX_BATCH_TOKENS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-batch-requests", flags->max_batch_requests,
                  "... or this many sequences (1 turns batching off)")
      ->envname("SLUICE_MAX_BATCH_REQUESTS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-queue-delay-us", flags->max_queue_delay_us,
                  "... or its oldest sequence has waited this long (microseconds)")
      ->envname("SLUICE_MAX_QUEUE_DELAY_US")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--max-concurrent-requests", flags->max_concurrent_requests,
                  "Requests in flight at once; more get 429")
      ->envname("SLUICE_MAX_CONCURRENT_REQUESTS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-client-batch-size", flags->max_client_batch_size,
                  "Inputs in one request; more get 413")
      ->envname("SLUICE_MAX_CLIENT_BATCH_SIZE")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--payload-limit", flags->payload_limit, "Request body bytes; more get 413")
      ->envname("SLUICE_PAYLOAD_LIMIT")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-input-length", flags->max_input_length,
                  "Tokens per input (0: the model's max_seq_length)")
      ->envname("SLUICE_MAX_INPUT_LENGTH")
      ->capture_default_str();
  cmd->add_flag("--auto-truncate", flags->auto_truncate,
                "Truncate over-long inputs instead of answering 413")
      ->envname("SLUICE_AUTO_TRUNCATE");
  cmd->add_option("--request-timeout", flags->request_timeout_ms,
                  "Milliseconds a request may take before it is answered 504 (a client's "
                  "x-request-timeout-ms can shorten it)")
      ->envname("SLUICE_REQUEST_TIMEOUT")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--header-timeout-ms", flags->header_timeout_ms,
                  "Milliseconds from a request's first byte to the end of its headers")
      ->envname("SLUICE_HEADER_TIMEOUT_MS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--idle-timeout-ms", flags->idle_timeout_ms,
                  "Milliseconds an idle keep-alive connection stays open")
      ->envname("SLUICE_IDLE_TIMEOUT_MS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--shutdown-grace-ms", flags->shutdown_grace_ms,
                  "On SIGTERM/SIGINT, how long in-flight requests may finish")
      ->envname("SLUICE_SHUTDOWN_GRACE_MS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--cache-bytes", flags->cache_bytes,
                  "In-process result cache budget in bytes (0 turns the cache off)")
      ->envname("SLUICE_CACHE_BYTES")
      ->capture_default_str();
  cmd->add_option("--cache-ttl-seconds", flags->cache_ttl_seconds,
                  "Seconds a cached vector stays valid (0: until evicted)")
      ->envname("SLUICE_CACHE_TTL_SECONDS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--database-url", flags->database_url,
                  "PostgreSQL connection string: enables the shared cache tier and /v1/jobs")
      ->envname("SLUICE_DATABASE_URL");
  cmd->callback([flags, exit_code] { *exit_code = Serve(*flags); });
}

}  // namespace sluice::cli
