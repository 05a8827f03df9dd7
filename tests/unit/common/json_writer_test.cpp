#include "common/json_writer.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace sluice {
namespace {

TEST(JsonWriterTest, NestsWithCommas) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("object");
  w.String("list");
  w.Key("data");
  w.BeginArray();
  w.BeginObject();
  w.Key("index");
  w.Int(0);
  w.Key("ok");
  w.Bool(true);
  w.EndObject();
  w.BeginObject();
  w.Key("index");
  w.Int(1);
  w.Key("none");
  w.Null();
  w.EndObject();
  w.EndArray();
  w.Key("ids");
  std::vector<int32_t> ids = {101, 7592, 102};
  w.IntArray(ids);
  w.EndObject();
  EXPECT_EQ(out, R"({"object":"list","data":[{"index":0,"ok":true},{"index":1,"none":null}],)"
                 R"("ids":[101,7592,102]})");
}

struct EscapeCase {
  std::string in;
  std::string want;
};

TEST(JsonWriterTest, EscapesStrings) {
  const EscapeCase cases[] = {
      {"plain", R"("plain")"},
      {"q\"b\\", R"("q\"b\\")"},
      {"a\nb\rc\td", R"("a\nb\rc\td")"},
      {std::string("nul\0x", 5), R"("nul\u0000x")"},
      {"\x1f", R"("\u001f")"},
      {"caf\xc3\xa9 \xf0\x9f\x8d\x95", "\"caf\xc3\xa9 \xf0\x9f\x8d\x95\""},
  };
  for (const auto& c : cases) {
    std::string out;
    AppendJsonString(c.in, &out);
    EXPECT_EQ(out, c.want);
  }
}

TEST(JsonWriterTest, FloatsRoundTripAndNonFiniteIsNull) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 0.1f);
  for (int i = 0; i < 1000; ++i) {
    float v = dist(rng);
    std::string out;
    JsonWriter(&out).Float(v);
    float back = 0;
    std::from_chars(out.data(), out.data() + out.size(), back);
    EXPECT_EQ(back, v) << out;
  }
  std::string out;
  JsonWriter w(&out);
  w.BeginArray();
  w.Float(std::numeric_limits<float>::quiet_NaN());
  w.Float(std::numeric_limits<float>::infinity());
  w.EndArray();
  EXPECT_EQ(out, "[null,null]");
}

}  // namespace
}  // namespace sluice
