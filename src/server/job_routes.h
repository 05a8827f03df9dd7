// JobRoutes: the asynchronous API over the PostgreSQL job queue.
//   POST   /v1/jobs       {"model","input":[...],"priority"?} -> 202 {"id","object","status"}
//   GET    /v1/jobs/{id}  status; once completed, "data" as in /v1/embeddings
//   DELETE /v1/jobs/{id}  cancels a pending or processing job
// Database calls run on a small thread pool of their own, so a slow or unreachable PostgreSQL
// never holds up the I/O threads (and the synchronous API) while it answers 503.
// Thread-safety: the handlers may run on any thread; destroy after the server stopped.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <memory>

#include "common/status.h"
#include "pg/pg_job_queue.h"
#include "server/api_context.h"
#include "server/router.h"

namespace sluice {

struct JobRoutesOptions {
  // Threads that wait on PostgreSQL for the job routes.
  int threads = 4;
};

class JobRoutes {
 public:
  // `context` and `queue` must outlive this object.
  static StatusOr<std::unique_ptr<JobRoutes>> Create(const ApiContext* context, PgJobQueue* queue,
                                                     JobRoutesOptions options = {});
  // Waits for the database calls in progress.
  ~JobRoutes();
  JobRoutes(const JobRoutes&) = delete;
  JobRoutes& operator=(const JobRoutes&) = delete;

  // Registers the three routes; this object must outlive the router's use.
  void Register(Router* router);

 private:
  JobRoutes(const ApiContext* context, PgJobQueue* queue, int threads)
      : context_(context), queue_(queue), pool_(static_cast<size_t>(threads)) {}

  void HandleCreate(const HttpRequest& req, Responder respond);
  void HandleGet(const HttpRequest& req, Responder respond);
  void HandleCancel(const HttpRequest& req, Responder respond);

  const ApiContext* const context_;
  PgJobQueue* const queue_;
  boost::asio::thread_pool pool_;
};

}  // namespace sluice
