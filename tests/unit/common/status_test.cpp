#include "common/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace sluice {
namespace {

StatusOr<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd");
  return x / 2;
}

StatusOr<int> Quarter(int x) {
  SLUICE_ASSIGN_OR_RETURN(int half, Half(x));
  SLUICE_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

Status CheckEven(int x) {
  SLUICE_RETURN_IF_ERROR(Half(x).status());
  return Status::Ok();
}

TEST(StatusTest, OkAndErrorsCarryCodeAndMessage) {
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(Status::Ok().ToString(), "ok");
  Status s = TooLarge("too many tokens");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kTooLarge);
  EXPECT_EQ(s.ToString(), "too_large: too many tokens");
  EXPECT_EQ(s.WithContext("input 3").message(), "input 3: too many tokens");
}

TEST(StatusTest, MacrosPropagate) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_FALSE(CheckEven(3).ok());
}

TEST(StatusTest, HoldsMoveOnlyValues) {
  StatusOr<std::unique_ptr<std::string>> v = std::make_unique<std::string>("x");
  ASSERT_TRUE(v.ok());
  std::unique_ptr<std::string> taken = std::move(v).value();
  EXPECT_EQ(*taken, "x");
}

TEST(StatusDeathTest, ValueOfErrorAborts) {
  StatusOr<int> e = Internal("boom");
  EXPECT_DEATH((void)e.value(), "value\\(\\) of an error");
}

}  // namespace
}  // namespace sluice
