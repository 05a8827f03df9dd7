#include "server/job_routes.h"

#include <simdjson.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <charconv>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/json_writer.h"
#include "server/route_helpers.h"

namespace sluice {
namespace {

constexpr std::string_view kJobsPath = "/v1/jobs";
constexpr std::string_view kJobPrefix = "/v1/jobs/";

struct JobRequest {
  std::optional<std::string> model;
  std::vector<std::string> input;
  int32_t priority = 0;
};

StatusOr<JobRequest> ParseJobRequest(std::string_view body) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::error_code err = parser.parse(body.data(), body.size(), true).get(doc);
  if (err == simdjson::UTF8_ERROR) return InvalidArgument("the request body is not valid UTF-8");
  if (err == simdjson::EMPTY) return InvalidArgument("the request body is empty");
  if (err) {
    return InvalidArgument(std::string("the request body is not valid JSON: ") +
                           simdjson::error_message(err));
  }
  simdjson::dom::object obj;
  if (doc.get(obj)) return InvalidArgument("the request body must be a JSON object");

  JobRequest req;
  simdjson::dom::element e;
  if (!obj.at_key("model").get(e) && !e.is_null()) {
    std::string_view model;
    if (e.get(model)) return InvalidArgument("'model' must be a string");
    req.model = std::string(model);
  }
  if (obj.at_key("input").get(e) || e.is_null()) return InvalidArgument("'input' is required");
  std::string_view text;
  simdjson::dom::array items;
  if (!e.get(text)) {
    req.input.emplace_back(text);
  } else if (!e.get(items)) {
    if (items.size() == 0) return InvalidArgument("'input' must not be an empty array");
    size_t i = 0;
    for (simdjson::dom::element item : items) {
      if (item.get(text)) {
        return InvalidArgument("'input[" + std::to_string(i) + "]' must be a string");
      }
      req.input.emplace_back(text);
      ++i;
    }
  } else {
    return InvalidArgument("'input' must be a string or an array of strings");
  }
  for (size_t i = 0; i < req.input.size(); ++i) {
    if (req.input[i].empty()) {
      return InvalidArgument("'input[" + std::to_string(i) + "]' must not be empty");
    }
  }
  if (!obj.at_key("priority").get(e) && !e.is_null()) {
    int64_t priority;
    if (e.get(priority) || priority < std::numeric_limits<int32_t>::min() ||
        priority > std::numeric_limits<int32_t>::max()) {
      return InvalidArgument("'priority' must be a 32-bit integer");
    }
    req.priority = static_cast<int32_t>(priority);
  }
  return req;
}

// The id in "/v1/jobs/{id}"; InvalidArgument unless it is a positive integer.
StatusOr<int64_t> JobIdFromPath(const std::string& path) {
  std::string_view s = std::string_view(path).substr(kJobPrefix.size());
  int64_t id = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
  if (ec != std::errc() || end != s.data() + s.size() || id <= 0) {
    return InvalidArgument("job id must be a positive integer, not '" + std::string(s) + "'");
  }
  return id;
}

int64_t UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

HttpResponse JobResponse(const JobRecord& job) {
  HttpResponse r;
  JsonWriter w(&r.body);
  w.BeginObject();
  w.Key("id");
  w.Int(job.id);
  w.Key("object");
  w.String("job");
  w.Key("model");
  w.String(job.model);
  w.Key("status");
  w.String(JobStatusName(job.status));
  w.Key("priority");
  w.Int(job.priority);
  w.Key("attempt");
  w.Int(job.attempt);
  w.Key("max_attempts");
  w.Int(job.max_attempts);
  w.Key("created_at");
  w.Int(UnixSeconds(job.created_at));
  if (job.completed_at) {
    w.Key("completed_at");
    w.Int(UnixSeconds(*job.completed_at));
  }
  if (job.error) {
    w.Key("error");
    w.String(*job.error);
  }
  if (job.status == JobStatus::kCompleted) {
    w.Key("data");
    w.BeginArray();
    for (size_t i = 0; i < job.result.size(); ++i) {
      w.BeginObject();
      w.Key("object");
      w.String("embedding");
      w.Key("index");
      w.Int(static_cast<int64_t>(i));
      w.Key("embedding");
      w.FloatArray(std::span<const float>(job.result[i]));
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  return r;
}

// A database that does not answer in time is as unavailable as one that is down: 503.
HttpResponse QueueError(const Status& status) {
  if (status.code() == StatusCode::kDeadlineExceeded) {
    return ErrorResponse(
        Unavailable("the job database did not answer in time: " + status.message()));
  }
  return ErrorResponse(status);
}

HttpResponse StatusOnly(int http_status, int64_t id, JobStatus status) {
  HttpResponse r;
  r.status = http_status;
  JsonWriter w(&r.body);
  w.BeginObject();
  w.Key("id");
  w.Int(id);
  w.Key("object");
  w.String("job");
  w.Key("status");
  w.String(JobStatusName(status));
  w.EndObject();
  return r;
}

}  // namespace

StatusOr<std::unique_ptr<JobRoutes>> JobRoutes::Create(const ApiContext* context, PgJobQueue* queue,
                                                       JobRoutesOptions options) {
  if (context == nullptr || queue == nullptr) {
    return InvalidArgument("job routes need the API context and a job queue");
  }
  if (options.threads < 1) return InvalidArgument("job routes need at least one thread");
  return std::unique_ptr<JobRoutes>(new JobRoutes(context, queue, options.threads));
}

JobRoutes::~JobRoutes() { pool_.join(); }

void JobRoutes::Register(Router* router) {
  const std::string jobs(kJobsPath);
  const std::string prefix(kJobPrefix);
  router->Handle("POST", jobs,
                 [this](const HttpRequest& req, Responder respond) { HandleCreate(req, respond); });
  router->HandlePrefix("GET", prefix, [this](const HttpRequest& req, Responder respond) {
    HandleGet(req, respond);
  });
  router->HandlePrefix("DELETE", prefix, [this](const HttpRequest& req, Responder respond) {
    HandleCancel(req, respond);
  });
}

void JobRoutes::HandleCreate(const HttpRequest& req, Responder respond) {
  // The served model names are known once the model is loaded.
  StatusOr<EmbeddingService*> service = LoadedService(*context_);
  if (!service.ok()) return respond(ErrorResponse(service.status()));
  StatusOr<JobRequest> parsed = ParseJobRequest(req.body);
  if (!parsed.ok()) return respond(ErrorResponse(parsed.status()));
  const std::vector<std::string>& names = context_->model.served_names;
  std::string model = parsed->model.value_or(names.front());
  if (std::find(names.begin(), names.end(), model) == names.end()) {
    return respond(ErrorResponse(NotFound("model '" + model + "' is not served here")));
  }
  boost::asio::post(pool_, [this, respond, id = req.request_id, model = std::move(model),
                            job = std::move(parsed).value()] {
    AnswerGuarded(respond, id, [&] {
      StatusOr<int64_t> job_id = queue_->Enqueue(model, job.input, job.priority);
      if (!job_id.ok()) return QueueError(job_id.status());
      return StatusOnly(202, *job_id, JobStatus::kPending);
    });
  });
}

void JobRoutes::HandleGet(const HttpRequest& req, Responder respond) {
  StatusOr<int64_t> job_id = JobIdFromPath(req.path);
  if (!job_id.ok()) return respond(ErrorResponse(job_id.status()));
  boost::asio::post(pool_, [this, respond, id = req.request_id, job_id = *job_id] {
    AnswerGuarded(respond, id, [&] {
      StatusOr<JobRecord> job = queue_->Get(job_id);
      if (!job.ok()) return QueueError(job.status());
      return JobResponse(*job);
    });
  });
}

void JobRoutes::HandleCancel(const HttpRequest& req, Responder respond) {
  StatusOr<int64_t> job_id = JobIdFromPath(req.path);
  if (!job_id.ok()) return respond(ErrorResponse(job_id.status()));
  boost::asio::post(pool_, [this, respond, id = req.request_id, job_id = *job_id] {
    AnswerGuarded(respond, id, [&] {
      Status cancelled = queue_->Cancel(job_id);
      if (!cancelled.ok()) return QueueError(cancelled);
      return StatusOnly(200, job_id, JobStatus::kCancelled);
    });
  });
}

}  // namespace sluice
