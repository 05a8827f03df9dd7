#include <span>
#include <string>
#include <utility>

#include "common/json_writer.h"
#include "server/api_requests.h"
#include "server/route_helpers.h"
#include "server/routes.h"

namespace sluice {
namespace {

HttpResponse EmbedResponse(const Embeddings& e) {
  HttpResponse r;
  r.body.reserve(e.count * static_cast<size_t>(e.dim) * 12 + 16);
  JsonWriter w(&r.body);
  w.BeginArray();
  for (size_t i = 0; i < e.count; ++i) {
    w.FloatArray(std::span<const float>(e.data.data() + i * static_cast<size_t>(e.dim),
                                        static_cast<size_t>(e.dim)));
  }
  w.EndArray();
  return r;
}

void HandleEmbed(const ApiContext& ctx, const HttpRequest& req, const Responder& respond) {
  StatusOr<EmbeddingService*> service = LoadedService(ctx);
  if (!service.ok()) return respond(ErrorResponse(service.status()));
  StatusOr<TeiEmbedRequest> parsed = ParseTeiEmbedRequest(req.body);
  if (!parsed.ok()) return respond(ErrorResponse(parsed.status()));
  StatusOr<SteadyTime> deadline = RequestDeadline(req, ctx.limits);
  if (!deadline.ok()) return respond(ErrorResponse(deadline.status()));

  StatusOr<bool> use_cache = CacheAllowed(req);
  if (!use_cache.ok()) return respond(ErrorResponse(use_cache.status()));

  EmbedOptions options;
  options.normalize = parsed->normalize;
  options.use_cache = *use_cache;
  options.truncate = parsed->truncate;
  options.truncation_side = parsed->truncation_direction;
  options.deadline = *deadline;
  options.cancelled = req.cancelled;
  (*service)->Embed(std::move(parsed->inputs), options,
                    [respond, id = req.request_id](StatusOr<Embeddings> result) {
                      AnswerGuarded(respond, id, [&] {
                        if (!result.ok()) return ErrorResponse(result.status());
                        return EmbedResponse(*result);
                      });
                    });
}

void HandleTokenize(const ApiContext& ctx, const HttpRequest& req, const Responder& respond) {
  StatusOr<EmbeddingService*> service = LoadedService(ctx);
  if (!service.ok()) return respond(ErrorResponse(service.status()));
  StatusOr<TeiTokenizeRequest> parsed = ParseTeiTokenizeRequest(req.body);
  if (!parsed.ok()) return respond(ErrorResponse(parsed.status()));
  StatusOr<std::vector<Encoding>> encodings =
      (*service)->Tokenize(parsed->inputs, parsed->add_special_tokens);
  if (!encodings.ok()) return respond(ErrorResponse(encodings.status()));
  const Tokenizer& tokenizer = (*service)->tokenizer();
  HttpResponse r;
  JsonWriter w(&r.body);
  w.BeginArray();
  for (const Encoding& e : *encodings) {
    w.BeginArray();
    for (int32_t id : e.ids) {
      w.BeginObject();
      w.Key("id");
      w.Int(id);
      w.Key("text");
      std::optional<std::string> token = tokenizer.IdToToken(id);
      if (token) {
        w.String(*token);
      } else {
        w.Null();
      }
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndArray();
  respond(std::move(r));
}

}  // namespace

void AddTeiRoutes(Router* router, const ApiContext* context) {
  router->Handle("POST", "/embed", [context](const HttpRequest& req, Responder respond) {
    HandleEmbed(*context, req, respond);
  });
  router->Handle("POST", "/tokenize", [context](const HttpRequest& req, Responder respond) {
    HandleTokenize(*context, req, respond);
  });
}

}  // namespace sluice
