#include "server/json_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace sluice {
namespace {

TEST(JsonWriterTest, NestsObjectsAndArraysWithCommas) {
  JsonWriter w;
  w.BeginObject();
  w.Key("a").Int(1);
  w.Key("b").BeginArray().Int(-2).Bool(true).Null().String("x").EndArray();
  w.Key("c").BeginObject().EndObject();
  w.Key("d").BeginArray().BeginObject().Key("e").Bool(false).EndObject().BeginArray().EndArray();
  w.EndArray();
  w.EndObject();
  EXPECT_EQ(w.str(), R"({"a":1,"b":[-2,true,null,"x"],"c":{},"d":[{"e":false},[]]})");
}

TEST(JsonWriterTest, EscapesStrings) {
  JsonWriter w;
  w.String(std::string("q\"b\\n\nt\tc\x01 \xc3\xa9", 13));
  EXPECT_EQ(w.str(), "\"q\\\"b\\\\n\\nt\\tc\\u0001 \xc3\xa9\"");
}

TEST(JsonWriterTest, FloatsRoundTripInShortestForm) {
  const std::vector<float> values = {0.0f,  1.0f,          -0.5f,           0.1f,
                                     1e-7f, 3.4028235e38f, 1.17549435e-38f, 0.0123456789f};
  JsonWriter w;
  w.FloatArray(values);
  EXPECT_EQ(w.str(), "[0,1,-0.5,0.1,1e-07,3.4028235e+38,1.1754944e-38,0.012345679]");
  // Every written number parses back to exactly the same float.
  std::string s = w.str().substr(1, w.str().size() - 2);
  size_t i = 0;
  for (float v : values) {
    size_t end = s.find(',', i);
    EXPECT_EQ(std::stof(s.substr(i, end - i)), v);
    i = end == std::string::npos ? s.size() : end + 1;
  }
}

TEST(JsonWriterTest, NonFiniteFloatsBecomeNull) {
  JsonWriter w;
  w.FloatArray(std::vector<float>{std::numeric_limits<float>::quiet_NaN(),
                                  std::numeric_limits<float>::infinity(), 2.0f});
  EXPECT_EQ(w.str(), "[null,null,2]");
}

}  // namespace
}  // namespace sluice
