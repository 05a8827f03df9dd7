#include "pg/pg_job_queue.h"

#include <algorithm>
#include <array>

#include "fmt/format.h"
#include "pg/pg_float_codec.h"
#include "pg/pg_migrations.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;

// The inputs column back as text[], in array order.
#define SLUICE_JOB_INPUTS(alias)                         \
  "ARRAY(SELECT e FROM jsonb_array_elements_text(" alias \
  ".input) WITH ORDINALITY AS t(e, n) ORDER BY n)"

constexpr PgStatement kEnqueue = {
    "sluice_job_enqueue",
    "INSERT INTO sluice.jobs (model, input, priority, max_attempts) "
    "VALUES ($1::text, to_jsonb($2::text[]), $3::int4, $4::int4) RETURNING id"};

constexpr PgStatement kGet = {
    "sluice_job_get",
    "SELECT j.id, j.model, " SLUICE_JOB_INPUTS(
        "j") ", j.status, j.priority, j.attempt, j.max_attempts, j.worker_id, j.error, "
             "j.result, j.result_dim, j.run_after, j.lease_expires_at, j.created_at, "
             "j.updated_at, j.completed_at FROM sluice.jobs j WHERE j.id = $1::int8"};

// The claim: lock up to $2 runnable rows that no one else holds (SKIP LOCKED), in priority
// order, then mark them in the same statement. MATERIALIZED keeps the LIMIT from being pushed
// into a join that could lock or update more rows than asked for. `filter` narrows the rows by
// model: with `model = $4` the planner treats model as a constant and walks
// jobs_claim_model_idx (model, priority DESC, id) in claim order; `model = ANY($4)` cannot, so
// several models take jobs_claim_idx with a filter or sort the matching rows.
#define SLUICE_JOB_CLAIM(filter) \
  "WITH c AS MATERIALIZED ("                                                 \
  "  SELECT id FROM sluice.jobs"                                             \
  "  WHERE status = 'pending' AND run_after <= now()" filter                 \
  "  ORDER BY priority DESC, id"                                             \
  "  LIMIT $2::int8"                                                         \
  "  FOR UPDATE SKIP LOCKED) "                                               \
  "UPDATE sluice.jobs j SET status = 'processing', attempt = j.attempt + 1," \
  "  worker_id = $1::text,"                                                  \
  "  lease_expires_at = now() + $3::int8 * interval '1 millisecond',"        \
  "  updated_at = now() "                                                    \
  "FROM c WHERE j.id = c.id "                                                \
  "RETURNING j.id, j.model, " SLUICE_JOB_INPUTS("j") ","                     \
  "  j.priority, j.attempt, j.max_attempts, j.lease_expires_at"

constexpr PgStatement kClaim = {"sluice_job_claim", SLUICE_JOB_CLAIM("")};
constexpr PgStatement kClaimModel = {"sluice_job_claim_model",
                                     SLUICE_JOB_CLAIM(" AND model = $4::text")};
constexpr PgStatement kClaimModels = {"sluice_job_claim_models",
                                      SLUICE_JOB_CLAIM(" AND model = ANY($4::text[])")};

constexpr PgStatement kHeartbeat = {
    "sluice_job_heartbeat",
    "UPDATE sluice.jobs SET lease_expires_at = now() + $3::int8 * interval '1 millisecond',"
    "  updated_at = now() "
    "WHERE id = ANY($2::int8[]) AND worker_id = $1::text AND status = 'processing' RETURNING id"};

constexpr PgStatement kComplete = {
    "sluice_job_complete",
    "UPDATE sluice.jobs SET status = 'completed', result = $3::bytea, result_dim = $4::int4,"
    "  error = NULL, lease_expires_at = NULL, completed_at = now(), updated_at = now() "
    "WHERE id = $1::int8 AND attempt = $2::int4 AND status = 'processing'"};

// $4: permanent; $5, $6: backoff base and cap in milliseconds. Column references on the right
// of SET read the row as it was before this update.
constexpr PgStatement kFail = {
    "sluice_job_fail",
    "UPDATE sluice.jobs SET"
    "  status = CASE WHEN $4::bool THEN 'failed'"
    "                WHEN attempt >= max_attempts THEN 'dead' ELSE 'pending' END,"
    "  error = $3::text,"
    "  run_after = CASE WHEN $4::bool OR attempt >= max_attempts THEN run_after"
    "    ELSE now() + least($6::float8, $5::float8 * power(2, attempt - 1))"
    "                 * (0.5 + random() * 0.5) * interval '1 millisecond' END,"
    "  completed_at = CASE WHEN $4::bool OR attempt >= max_attempts THEN now() END,"
    "  lease_expires_at = NULL, updated_at = now() "
    "WHERE id = $1::int8 AND attempt = $2::int4 AND status = 'processing' "
    "RETURNING status"};

constexpr PgStatement kReclaim = {
    "sluice_job_reclaim",
    "UPDATE sluice.jobs SET"
    "  status = CASE WHEN attempt >= max_attempts THEN 'dead' ELSE 'pending' END,"
    "  error = 'lease expired (worker ' || coalesce(worker_id, '?') || ', attempt ' || attempt"
    "          || ')',"
    "  completed_at = CASE WHEN attempt >= max_attempts THEN now() END,"
    "  lease_expires_at = NULL, updated_at = now() "
    "WHERE status = 'processing' AND lease_expires_at < now() "
    "RETURNING status"};

constexpr PgStatement kCancel = {
    "sluice_job_cancel",
    "UPDATE sluice.jobs SET status = 'cancelled', lease_expires_at = NULL,"
    "  completed_at = now(), updated_at = now() "
    "WHERE id = $1::int8 AND status IN ('pending', 'processing')"};

constexpr PgStatement kStatusOf = {"sluice_job_status",
                                   "SELECT status FROM sluice.jobs WHERE id = $1::int8"};

constexpr PgStatement kCleanup = {
    "sluice_job_cleanup",
    "DELETE FROM sluice.jobs WHERE status IN ('completed', 'cancelled')"
    "  AND completed_at < now() - $1::int8 * interval '1 second'"};

constexpr std::array<std::string_view, 6> kStatusNames = {"pending", "processing", "completed",
                                                          "failed",  "dead",       "cancelled"};

StatusOr<JobRecord> RecordFromRow(const PgResult& r, int row) {
  JobRecord job;
  SLUICE_ASSIGN_OR_RETURN(job.id, r.BinaryInt64(row, 0));
  job.model = std::string(r.Raw(row, 1));
  SLUICE_ASSIGN_OR_RETURN(job.inputs, r.BinaryTextArray(row, 2));
  SLUICE_ASSIGN_OR_RETURN(job.status, ParseJobStatus(r.Raw(row, 3)));
  SLUICE_ASSIGN_OR_RETURN(job.priority, r.BinaryInt32(row, 4));
  SLUICE_ASSIGN_OR_RETURN(job.attempt, r.BinaryInt32(row, 5));
  SLUICE_ASSIGN_OR_RETURN(job.max_attempts, r.BinaryInt32(row, 6));
  if (!r.IsNull(row, 7)) job.worker_id = std::string(r.Raw(row, 7));
  if (!r.IsNull(row, 8)) job.error = std::string(r.Raw(row, 8));
  if (!r.IsNull(row, 9) && !r.IsNull(row, 10)) {
    SLUICE_ASSIGN_OR_RETURN(int32_t dim, r.BinaryInt32(row, 10));
    SLUICE_ASSIGN_OR_RETURN(std::vector<float> flat, DecodeFloats(r.Raw(row, 9)));
    if (dim <= 0 || flat.size() % static_cast<size_t>(dim) != 0) {
      return DataLoss(fmt::format("job {}: result size does not match result_dim", job.id));
    }
    for (size_t off = 0; off < flat.size(); off += static_cast<size_t>(dim)) {
      job.result.emplace_back(flat.begin() + static_cast<ptrdiff_t>(off),
                              flat.begin() + static_cast<ptrdiff_t>(off + dim));
    }
  }
  SLUICE_ASSIGN_OR_RETURN(job.run_after, r.BinaryTimestamp(row, 11));
  if (!r.IsNull(row, 12)) {
    SLUICE_ASSIGN_OR_RETURN(job.lease_expires_at, r.BinaryTimestamp(row, 12));
  }
  SLUICE_ASSIGN_OR_RETURN(job.created_at, r.BinaryTimestamp(row, 13));
  SLUICE_ASSIGN_OR_RETURN(job.updated_at, r.BinaryTimestamp(row, 14));
  if (!r.IsNull(row, 15)) {
    SLUICE_ASSIGN_OR_RETURN(job.completed_at, r.BinaryTimestamp(row, 15));
  }
  return job;
}

}  // namespace

std::string_view JobStatusName(JobStatus status) {
  return kStatusNames[static_cast<size_t>(status)];
}

StatusOr<JobStatus> ParseJobStatus(std::string_view name) {
  for (size_t i = 0; i < kStatusNames.size(); ++i) {
    if (kStatusNames[i] == name) return static_cast<JobStatus>(i);
  }
  return InvalidArgument(fmt::format("unknown job status '{}'", name));
}

StatusOr<std::unique_ptr<PgJobQueue>> PgJobQueue::Create(std::shared_ptr<PgPool> pool,
                                                         PgJobQueueOptions options) {
  if (options.backoff_base.count() <= 0 || options.backoff_max < options.backoff_base) {
    return InvalidArgument("job backoff: need 0 < backoff_base <= backoff_max");
  }
  {
    SLUICE_ASSIGN_OR_RETURN(PgPool::Handle conn, pool->Acquire());
    SLUICE_RETURN_IF_ERROR(CheckSchema(*conn));
  }
  return std::unique_ptr<PgJobQueue>(new PgJobQueue(std::move(pool), options));
}

StatusOr<int64_t> PgJobQueue::Enqueue(std::string_view model, std::span<const std::string> inputs,
                                      int32_t priority, int32_t max_attempts) {
  if (model.empty()) return InvalidArgument("job model must not be empty");
  if (inputs.empty()) return InvalidArgument("job input must hold at least one string");
  if (inputs.size() > options_.max_inputs) {
    return TooLarge(
        fmt::format("job has {} inputs; the limit is {}", inputs.size(), options_.max_inputs));
  }
  size_t bytes = 0;
  for (const std::string& s : inputs) bytes += s.size();
  if (bytes > options_.max_input_bytes) {
    return TooLarge(
        fmt::format("job input is {} bytes; the limit is {}", bytes, options_.max_input_bytes));
  }
  if (max_attempts < 1) return InvalidArgument("max_attempts must be at least 1");
  SLUICE_ASSIGN_OR_RETURN(PgPool::Handle conn, pool_->Acquire());
  SLUICE_ASSIGN_OR_RETURN(
      PgResult r,
      conn->ExecutePrepared(
          kEnqueue, PgParams().Text(model).TextArray(inputs).Int32(priority).Int32(max_attempts),
          PgFormat::kBinary));
  return r.BinaryInt64(0, 0);
}

StatusOr<JobRecord> PgJobQueue::Get(int64_t id) {
  SLUICE_ASSIGN_OR_RETURN(PgPool::Handle conn, pool_->Acquire());
  SLUICE_ASSIGN_OR_RETURN(PgResult r,
                          conn->ExecutePrepared(kGet, PgParams().Int64(id), PgFormat::kBinary));
  if (r.rows() == 0) return NotFound(fmt::format("no job {}", id));
  return RecordFromRow(r, 0);
}

Status PgJobQueue::Cancel(int64_t id) {
  SLUICE_ASSIGN_OR_RETURN(PgPool::Handle conn, pool_->Acquire());
  SLUICE_ASSIGN_OR_RETURN(PgResult r, conn->ExecutePrepared(kCancel, PgParams().Int64(id)));
  if (r.affected_rows() == 1) return Status::Ok();
  SLUICE_ASSIGN_OR_RETURN(PgResult s, conn->ExecutePrepared(kStatusOf, PgParams().Int64(id)));
  if (s.rows() == 0) return NotFound(fmt::format("no job {}", id));
  return FailedPrecondition(fmt::format("job {} is already {}", id, s.Raw(0, 0)));
}

StatusOr<std::vector<ClaimedJob>> PgJobQueue::Claim(std::string_view worker_id, int n,
                                                    milliseconds lease,
                                                    std::span<const std::string> models) {
  if (n < 1) return InvalidArgument("claim at least one job");
  if (worker_id.empty()) return InvalidArgument("worker id must not be empty");
  if (lease.count() <= 0) return InvalidArgument("lease must be positive");
  for (const std::string& model : models) {
    if (model.empty()) return InvalidArgument("a claimed model name must not be empty");
  }
  PgParams params;
  params.Text(worker_id).Int64(n).Int64(lease.count());
  const PgStatement* statement = &kClaim;
  if (models.size() == 1) {
    statement = &kClaimModel;
    params.Text(models.front());
  } else if (models.size() > 1) {
    statement = &kClaimModels;
    params.TextArray(models);
  }
  SLUICE_ASSIGN_OR_RETURN(PgPool::Handle conn, pool_->Acquire());
  SLUICE_ASSIGN_OR_RETURN(PgResult r, conn->ExecutePrepared(*statement, params, PgFormat::kBinary));
  std::vector<ClaimedJob> jobs;
  jobs.reserve(static_cast<size_t>(r.rows()));
  for (int row = 0; row < r.rows(); ++row) {
    ClaimedJob job;
    SLUICE_ASSIGN_OR_RETURN(job.id, r.BinaryInt64(row, 0));
    job.model = std::string(r.Raw(row, 1));
    SLUICE_ASSIGN_OR_RETURN(job.inputs, r.BinaryTextArray(row, 2));
    SLUICE_ASSIGN_OR_RETURN(job.priority, r.BinaryInt32(row, 3));
    SLUICE_ASSIGN_OR_RETURN(job.attempt, r.BinaryInt32(row, 4));
    SLUICE_ASSIGN_OR_RETURN(job.max_attempts, r.BinaryInt32(row, 5));
    SLUICE_ASSIGN_OR_RETURN(job.lease_expires_at, r.BinaryTimestamp(row, 6));
    jobs.push_back(std::move(job));
  }
  // RETURNING has no order of its own.
  std::sort(jobs.begin(), jobs.end(), [](const ClaimedJob& a, const ClaimedJob& b) {
    return a.priority != b.priority ? a.priority > b.priority : a.id < b.id;
  });
  return jobs;
}

StatusOr<std::vector<int64_t>> PgJobQueue::Heartbeat(std::string_view worker_id,
                                                     std::span<const int64_t> ids,
                                                     milliseconds lease) {
  if (lease.count() <= 0) return InvalidArgument("lease must be positive");
  std::vector<int64_t> held;
  if (ids.empty()) return held;
  SLUICE_ASSIGN_OR_RETURN(PgPool::Handle conn, pool_->Acquire());
  SLUICE_ASSIGN_OR_RETURN(
      PgResult r, conn->ExecutePrepared(
                      kHeartbeat, PgParams().Text(worker_id).Int64Array(ids).Int64(lease.count()),
                      PgFormat::kBinary));
  for (int row = 0; row < r.rows(); ++row) {
    SLUICE_ASSIGN_OR_RETURN(int64_t id, r.BinaryInt64(row, 0));
    held.push_back(id);
  }
  std::sort(held.begin(), held.end());
  return held;
}

namespace {

// The parameters of kComplete; InvalidArgument for an empty or ragged result.
StatusOr<PgParams> CompleteParams(int64_t id, int32_t attempt,
                                  const std::vector<std::vector<float>>& result) {
  if (result.empty()) return InvalidArgument("a job result needs at least one vector");
  size_t dim = result.front().size();
  if (dim == 0) return InvalidArgument("a job result vector must not be empty");
  std::string bytes;
  bytes.reserve(result.size() * dim * sizeof(float));
  for (const std::vector<float>& v : result) {
    if (v.size() != dim) {
      return InvalidArgument(
          fmt::format("job result vectors differ in size ({} and {})", dim, v.size()));
    }
    AppendFloats(v, bytes);
  }
  PgParams params;
  params.Int64(id).Int32(attempt).Bytea(bytes).Int32(static_cast<int32_t>(dim));
  return params;
}

}  // namespace

StatusOr<bool> PgJobQueue::Complete(int64_t id, int32_t attempt,
                                    const std::vector<std::vector<float>>& result) {
  SLUICE_ASSIGN_OR_RETURN(PgParams params, CompleteParams(id, attempt, result));
  SLUICE_ASSIGN_OR_RETURN(PgPool::Handle conn, pool_->Acquire());
  SLUICE_ASSIGN_OR_RETURN(PgResult r, conn->ExecutePrepared(kComplete, params));
  return r.affected_rows() == 1;
}

StatusOr<std::vector<bool>> PgJobQueue::CompleteMany(std::span<const Completion> completions) {
  std::vector<PgCommand> commands;
  commands.reserve(completions.size());
  for (const Completion& c : completions) {
    SLUICE_ASSIGN_OR_RETURN(PgParams params, CompleteParams(c.id, c.attempt, c.result));
    commands.push_back(PgCommand{&kComplete, std::move(params)});
  }
  std::vector<bool> won;
  if (commands.empty()) return won;
  SLUICE_ASSIGN_OR_RETURN(PgPool::Handle conn, pool_->Acquire());
  SLUICE_ASSIGN_OR_RETURN(std::vector<PgResult> results, conn->ExecutePipeline(commands));
  for (const PgResult& r : results) won.push_back(r.affected_rows() == 1);
  return won;
}

StatusOr<FailOutcome> PgJobQueue::Fail(int64_t id, int32_t attempt, std::string_view error,
                                       bool permanent) {
  SLUICE_ASSIGN_OR_RETURN(PgPool::Handle conn, pool_->Acquire());
  SLUICE_ASSIGN_OR_RETURN(
      PgResult r,
      conn->ExecutePrepared(kFail, PgParams()
                                       .Int64(id)
                                       .Int32(attempt)
                                       .Text(error)
                                       .Text(permanent ? "true" : "false")
                                       .Text(std::to_string(options_.backoff_base.count()))
                                       .Text(std::to_string(options_.backoff_max.count()))));
  if (r.rows() == 0) return FailOutcome::kLost;
  SLUICE_ASSIGN_OR_RETURN(JobStatus status, ParseJobStatus(r.Raw(0, 0)));
  switch (status) {
    case JobStatus::kPending:
      return FailOutcome::kRetry;
    case JobStatus::kDead:
      return FailOutcome::kDead;
    case JobStatus::kFailed:
      return FailOutcome::kFailed;
    default:
      return Internal(fmt::format("job {}: unexpected status after Fail", id));
  }
}

StatusOr<int64_t> PgJobQueue::ReclaimExpired() {
  SLUICE_ASSIGN_OR_RETURN(PgPool::Handle conn, pool_->Acquire());
  SLUICE_ASSIGN_OR_RETURN(PgResult r, conn->ExecutePrepared(kReclaim, PgParams()));
  bool any_pending = false;
  for (int row = 0; row < r.rows(); ++row) any_pending |= r.Raw(row, 0) == "pending";
  if (any_pending) {
    // Reclaimed jobs are runnable now: wake idle workers as an insert would.
    SLUICE_RETURN_IF_ERROR(conn->Execute("SELECT pg_notify('sluice_jobs', '')").status());
  }
  return static_cast<int64_t>(r.rows());
}

StatusOr<int64_t> PgJobQueue::CleanupCompleted(std::chrono::seconds retention) {
  if (retention.count() < 0) return InvalidArgument("retention must not be negative");
  SLUICE_ASSIGN_OR_RETURN(PgPool::Handle conn, pool_->Acquire());
  SLUICE_ASSIGN_OR_RETURN(PgResult r,
                          conn->ExecutePrepared(kCleanup, PgParams().Int64(retention.count())));
  return r.affected_rows();
}

}  // namespace sluice
