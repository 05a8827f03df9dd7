// Shared pieces of the HTTP routes: per-request deadlines, the catch-all for work finished on
// other threads, and the model-loaded check.
#pragma once

#include <exception>
#include <functional>

#include "common/logging.h"
#include "common/status.h"
#include "scheduler/embed_task.h"
#include "server/api_context.h"
#include "server/http_message.h"
#include "server/http_status.h"

namespace sluice {

// The request's deadline: --request-timeout after it arrived, shortened by a positive
// x-request-timeout-ms header. InvalidArgument for a malformed header.
StatusOr<SteadyTime> RequestDeadline(const HttpRequest& request, const ApiLimits& limits);

// Whether the request may read and fill the result cache: false for `x-sluice-cache: bypass`
// (any case), true when the header is absent. InvalidArgument for any other value.
StatusOr<bool> CacheAllowed(const HttpRequest& request);

// The embedding service, or Unavailable while the model loads.
StatusOr<EmbeddingService*> LoadedService(const ApiContext& context);

// Runs `write` (which builds the response) and answers with its result; an exception becomes a
// 500 naming the request id. Used for answers built on batcher threads, where no other
// catch-all exists.
void AnswerGuarded(const Responder& respond, const std::string& request_id,
                   const std::function<HttpResponse()>& write);

}  // namespace sluice
