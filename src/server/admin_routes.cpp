#include <string>
#include <utility>

#include "common/json_writer.h"
#include "common/version.h"
#include "server/route_helpers.h"
#include "server/routes.h"

namespace sluice {
namespace {

HttpResponse StatusBody(std::string_view status) {
  HttpResponse r;
  JsonWriter w(&r.body);
  w.BeginObject();
  w.Key("status");
  w.String(status);
  w.EndObject();
  return r;
}

void HandleReady(const ApiContext& ctx, const Responder& respond) {
  StatusOr<EmbeddingService*> service = LoadedService(ctx);
  if (!service.ok()) return respond(ErrorResponse(service.status()));
  Status health = ctx.health ? ctx.health() : Status::Ok();
  if (!health.ok()) {
    return respond(ErrorResponse(Unavailable("not ready: " + health.message())));
  }
  respond(StatusBody("ready"));
}

void HandleInfo(const ApiContext& ctx, const Responder& respond) {
  StatusOr<EmbeddingService*> service = LoadedService(ctx);
  if (!service.ok()) return respond(ErrorResponse(service.status()));
  const ModelDescription& m = ctx.model;
  const ApiLimits& l = ctx.limits;
  HttpResponse r;
  JsonWriter w(&r.body);
  w.BeginObject();
  w.Key("model_id");
  w.String(m.id);
  w.Key("served_model_names");
  w.BeginArray();
  for (const std::string& n : m.served_names) w.String(n);
  w.EndArray();
  w.Key("model_type");
  w.String("embedding");
  w.Key("backend");
  w.String(m.backend);
  w.Key("embedding_dim");
  w.Int(m.embedding_dim);
  w.Key("max_input_length");
  w.Uint(m.max_input_length);
  w.Key("normalize");
  w.Bool(m.normalize);
  w.Key("max_batch_tokens");
  w.Uint(l.max_batch_tokens);
  w.Key("max_batch_requests");
  w.Uint(l.max_batch_requests);
  w.Key("max_client_batch_size");
  w.Uint(l.max_client_batch_size);
  w.Key("max_concurrent_requests");
  w.Uint(l.max_concurrent_requests);
  w.Key("payload_limit");
  w.Uint(l.payload_limit);
  w.Key("request_timeout_ms");
  w.Int(l.request_timeout.count());
  w.Key("version");
  w.String(VersionString());
  w.EndObject();
  respond(std::move(r));
}

}  // namespace

void AddAdminRoutes(Router* router, const ApiContext* context) {
  router->Handle("GET", "/health",
                 [](const HttpRequest&, Responder respond) { respond(StatusBody("ok")); });
  router->Handle("GET", "/ready", [context](const HttpRequest&, Responder respond) {
    HandleReady(*context, respond);
  });
  router->Handle("GET", "/info", [context](const HttpRequest&, Responder respond) {
    HandleInfo(*context, respond);
  });
  router->Handle("GET", "/metrics", [context](const HttpRequest&, Responder respond) {
    if (!context->metrics_text) {
      return respond(ErrorResponse(404, "not_found", "metrics are not enabled"));
    }
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = context->metrics_text();
    respond(std::move(r));
  });
}

}  // namespace sluice
