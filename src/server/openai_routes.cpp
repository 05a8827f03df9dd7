#include <algorithm>
#include <span>
#include <string>
#include <utility>

#include "common/json_writer.h"
#include "server/api_requests.h"
#include "server/base64.h"
#include "server/route_helpers.h"
#include "server/routes.h"

namespace sluice {
namespace {

static_assert(std::endian::native == std::endian::little,
              "base64 embeddings are little-endian float32; add a byte swap for this target");

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

HttpResponse EmbeddingsResponse(const Embeddings& e, EncodingFormat format,
                                const std::string& model) {
  HttpResponse r;
  r.body.reserve(e.count * static_cast<size_t>(e.dim) * 12 + 256);
  JsonWriter w(&r.body);
  w.BeginObject();
  w.Key("object");
  w.String("list");
  w.Key("data");
  w.BeginArray();
  std::string encoded;
  for (size_t i = 0; i < e.count; ++i) {
    std::span<const float> row(e.data.data() + i * static_cast<size_t>(e.dim),
                               static_cast<size_t>(e.dim));
    w.BeginObject();
    w.Key("object");
    w.String("embedding");
    w.Key("index");
    w.Int(static_cast<int64_t>(i));
    w.Key("embedding");
    if (format == EncodingFormat::kBase64) {
      encoded.clear();
      AppendBase64(std::as_bytes(row), &encoded);
      w.String(encoded);
    } else {
      w.FloatArray(row);
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("model");
  w.String(model);
  w.Key("usage");
  w.BeginObject();
  w.Key("prompt_tokens");
  w.Int(static_cast<int64_t>(e.prompt_tokens));
  w.Key("total_tokens");
  w.Int(static_cast<int64_t>(e.prompt_tokens));
  w.EndObject();
  w.EndObject();
  return r;
}

void HandleEmbeddings(const ApiContext& ctx, const HttpRequest& req, const Responder& respond) {
  StatusOr<EmbeddingService*> service = LoadedService(ctx);
  if (!service.ok()) return respond(ErrorResponse(service.status()));
  StatusOr<OpenAiEmbeddingsRequest> parsed = ParseOpenAiEmbeddingsRequest(req.body);
  if (!parsed.ok()) return respond(ErrorResponse(parsed.status()));
  const std::vector<std::string>& names = ctx.model.served_names;
  if (parsed->model && std::find(names.begin(), names.end(), *parsed->model) == names.end()) {
    return respond(ErrorResponse(
        NotFound("model '" + *parsed->model + "' is not served here; try: " + Join(names))));
  }
  StatusOr<SteadyTime> deadline = RequestDeadline(req, ctx.limits);
  if (!deadline.ok()) return respond(ErrorResponse(deadline.status()));

  StatusOr<bool> use_cache = CacheAllowed(req);
  if (!use_cache.ok()) return respond(ErrorResponse(use_cache.status()));

  EmbedOptions options;
  options.dimensions = parsed->dimensions;
  options.use_cache = *use_cache;
  options.deadline = *deadline;
  options.cancelled = req.cancelled;
  (*service)->Embed(std::move(parsed->input), options,
                    [respond, id = req.request_id, format = parsed->encoding_format,
                     model = names.front()](StatusOr<Embeddings> result) {
                      AnswerGuarded(respond, id, [&] {
                        if (!result.ok()) return ErrorResponse(result.status());
                        return EmbeddingsResponse(*result, format, model);
                      });
                    });
}

void HandleModels(const ApiContext& ctx, const Responder& respond) {
  StatusOr<EmbeddingService*> service = LoadedService(ctx);
  if (!service.ok()) return respond(ErrorResponse(service.status()));
  HttpResponse r;
  JsonWriter w(&r.body);
  w.BeginObject();
  w.Key("object");
  w.String("list");
  w.Key("data");
  w.BeginArray();
  for (const std::string& name : ctx.model.served_names) {
    w.BeginObject();
    w.Key("id");
    w.String(name);
    w.Key("object");
    w.String("model");
    w.Key("created");
    w.Int(0);
    w.Key("owned_by");
    w.String("sluice");
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  respond(std::move(r));
}

}  // namespace

void AddOpenAiRoutes(Router* router, const ApiContext* context) {
  router->Handle("POST", "/v1/embeddings", [context](const HttpRequest& req, Responder respond) {
    HandleEmbeddings(*context, req, respond);
  });
  router->Handle("GET", "/v1/models", [context](const HttpRequest&, Responder respond) {
    HandleModels(*context, respond);
  });
}

}  // namespace sluice
