// The HTTP API, registered on a Router. Every route reads its JSON into native structs
// (api_requests.h), calls the EmbeddingService and writes its answer with JsonWriter.
//   openai_routes.cpp  POST /v1/embeddings, GET /v1/models
//   tei_routes.cpp     POST /embed, POST /tokenize
//   admin_routes.cpp   GET /health, /ready, /info, /metrics
#pragma once

#include "server/api_context.h"
#include "server/router.h"

namespace sluice {

// `context` must outlive the router.
void AddOpenAiRoutes(Router* router, const ApiContext* context);
void AddTeiRoutes(Router* router, const ApiContext* context);
void AddAdminRoutes(Router* router, const ApiContext* context);

}  // namespace sluice
