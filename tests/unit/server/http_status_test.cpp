#include "server/http_status.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(HttpStatusTest, EveryStatusCodeMapsToItsHttpStatus) {
  const struct {
    StatusCode code;
    int http;
  } cases[] = {
      {StatusCode::kOk, 200},
      {StatusCode::kInvalidArgument, 400},
      {StatusCode::kOutOfRange, 400},
      {StatusCode::kNotFound, 404},
      {StatusCode::kAlreadyExists, 409},
      {StatusCode::kFailedPrecondition, 409},
      {StatusCode::kTooLarge, 413},
      {StatusCode::kResourceExhausted, 429},
      {StatusCode::kCancelled, 499},
      {StatusCode::kUnimplemented, 501},
      {StatusCode::kUnavailable, 503},
      {StatusCode::kDeadlineExceeded, 504},
      {StatusCode::kDataLoss, 500},
      {StatusCode::kInternal, 500},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(HttpStatusFor(c.code), c.http) << StatusCodeName(c.code);
  }
}

TEST(HttpStatusTest, ErrorBodyIsTheOpenAiShape) {
  HttpResponse r = ErrorResponse(InvalidArgument("'input' must not be \"empty\""));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, R"({"error":{"message":"'input' must not be \"empty\"",)"
                    R"("type":"invalid_request_error","code":"invalid_argument"}})");
  EXPECT_TRUE(r.headers.empty());
}

TEST(HttpStatusTest, OverloadAnswersCarryRetryAfter) {
  for (const Status& s : {ResourceExhausted("busy"), Unavailable("loading")}) {
    HttpResponse r = ErrorResponse(s);
    ASSERT_EQ(r.headers.size(), 1u) << s.ToString();
    EXPECT_EQ(r.headers[0].first, "Retry-After");
  }
  EXPECT_EQ(ErrorResponse(ResourceExhausted("busy")).status, 429);
  EXPECT_NE(ErrorResponse(ResourceExhausted("busy")).body.find("rate_limit_error"),
            std::string::npos);
  EXPECT_NE(ErrorResponse(Internal("bug")).body.find("server_error"), std::string::npos);
}

}  // namespace
}  // namespace sluice
