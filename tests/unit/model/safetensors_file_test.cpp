#include "model/safetensors_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "safetensors_writer.h"

namespace sluice {
namespace {

using testing::RawSafetensors;
using testing::SafetensorsWriter;
using testing::ScopedTempDir;
using testing::WriteFile;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(SafetensorsFileTest, OpensAGoodFile) {
  ScopedTempDir tmp;
  SafetensorsWriter w;
  w.SetMetadata("format", "pt");
  w.AddFloats("b.bias", DType::kF32, {3}, {1.0f, -2.0f, 0.5f});
  w.AddFloats("a.weight", DType::kF16, {2, 2}, {1.0f, 2.0f, 3.0f, 4.0f});
  w.AddRandom("c.ids", DType::kI64, {1, 4});
  w.Add("d.empty", DType::kF32, {0, 8}, "");
  const auto path = tmp.path() / "model.safetensors";
  w.WriteTo(path);

  StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_EQ(file->tensors().size(), 4u);
  EXPECT_EQ(file->tensors()[0].name, "a.weight");  // sorted by name
  EXPECT_EQ(file->metadata().at("format"), "pt");
  EXPECT_EQ(file->header(), w.Header());

  const TensorView* bias = file->Find("b.bias");
  ASSERT_NE(bias, nullptr);
  EXPECT_EQ(bias->dtype, DType::kF32);
  EXPECT_EQ(bias->shape, (std::vector<int64_t>{3}));
  std::vector<float> values(3);
  ASSERT_TRUE(ConvertToFloat32(*bias, values).ok());
  EXPECT_EQ(values, (std::vector<float>{1.0f, -2.0f, 0.5f}));

  const TensorView* a = file->Find("a.weight");
  ASSERT_NE(a, nullptr);
  std::vector<float> a_values(4);
  ASSERT_TRUE(ConvertToFloat32(*a, a_values).ok());
  EXPECT_EQ(a_values, (std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f}));

  const TensorView* empty = file->Find("d.empty");
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->nbytes, 0u);
  EXPECT_EQ(file->Find("missing"), nullptr);
}

TEST(SafetensorsFileTest, UnalignedDataIsReadable) {
  ScopedTempDir tmp;
  SafetensorsWriter w;
  w.AddPadding(3);  // the F32 tensor's data starts at an odd offset
  w.AddFloats("x", DType::kF32, {2}, {7.0f, 8.0f});
  w.WriteTo(tmp.path() / "x.safetensors");
  StatusOr<SafetensorsFile> file = SafetensorsFile::Open(tmp.path() / "x.safetensors");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  std::vector<float> out(2);
  ASSERT_TRUE(ConvertToFloat32(*file->Find("x"), out).ok());
  EXPECT_EQ(out, (std::vector<float>{7.0f, 8.0f}));
}

TEST(SafetensorsFileTest, MoveKeepsViewsValid) {
  ScopedTempDir tmp;
  SafetensorsWriter w;
  w.AddFloats("x", DType::kF32, {2}, {7.0f, 8.0f});
  w.WriteTo(tmp.path() / "x.safetensors");
  StatusOr<SafetensorsFile> opened = SafetensorsFile::Open(tmp.path() / "x.safetensors");
  ASSERT_TRUE(opened.ok());
  const TensorView* before = opened->Find("x");
  SafetensorsFile moved = std::move(opened).value();
  EXPECT_EQ(moved.Find("x"), before);
  SafetensorsFile assigned = std::move(moved);
  std::vector<float> out(2);
  ASSERT_TRUE(ConvertToFloat32(*assigned.Find("x"), out).ok());
  EXPECT_EQ(out[1], 8.0f);
}

struct CorruptCase {
  const char* name;
  std::string bytes;
  const char* message;  // a substring the error must contain
};

std::string Le64(uint64_t v) { return RawSafetensors(v, "", ""); }

std::vector<CorruptCase> CorruptCases() {
  const std::string four_floats(16, '\0');
  return {
      {"empty_file", "", "too small"},
      {"shorter_than_length", "\x08\x00\x00", "too small"},
      {"length_past_end", RawSafetensors(1000, "{}", ""), "runs past the end"},
      {"length_huge", Le64(uint64_t{1} << 62) + "{}", "over the limit"},
      {"length_all_ones", Le64(~uint64_t{0}) + "{}", "over the limit"},
      {"length_zero", Le64(0) + "{}", "too short"},
      {"header_not_json", RawSafetensors("{not json", ""), "not valid JSON"},
      {"header_truncated_json", RawSafetensors("{\"a\":{\"dtype\":\"F32\"", ""), "not valid JSON"},
      {"header_is_array", RawSafetensors("[1,2]", ""), "not a JSON object"},
      {"header_invalid_utf8", RawSafetensors("{\"\xff\":1}", ""), "not valid JSON"},
      {"entry_not_object", RawSafetensors(R"({"w":5})", ""), "entry is not an object"},
      {"metadata_not_object", RawSafetensors(R"({"__metadata__":3})", ""), "__metadata__"},
      {"missing_dtype", RawSafetensors(R"({"w":{"shape":[4],"data_offsets":[0,16]}})", four_floats),
       "\"dtype\""},
      {"dtype_not_string",
       RawSafetensors(R"({"w":{"dtype":4,"shape":[4],"data_offsets":[0,16]}})", four_floats),
       "\"dtype\""},
      {"missing_shape",
       RawSafetensors(R"({"w":{"dtype":"F32","data_offsets":[0,16]}})", four_floats), "\"shape\""},
      {"negative_dim",
       RawSafetensors(R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", four_floats),
       "\"shape\""},
      {"fractional_dim",
       RawSafetensors(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,16]}})", four_floats),
       "\"shape\""},
      {"missing_offsets", RawSafetensors(R"({"w":{"dtype":"F32","shape":[4]}})", four_floats),
       "data_offsets"},
      {"three_offsets",
       RawSafetensors(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8,16]}})", four_floats),
       "data_offsets"},
      {"reversed_offsets",
       RawSafetensors(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[16,0]}})", four_floats),
       "reversed"},
      {"offsets_past_data",
       RawSafetensors(R"({"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})", four_floats),
       "run past the data section"},
      {"truncated_data",
       RawSafetensors(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "12345678"),
       "run past the data section"},
      {"size_disagrees_with_shape",
       RawSafetensors(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", four_floats),
       "needs 12"},
      {"size_disagrees_with_dtype",
       RawSafetensors(R"({"w":{"dtype":"F16","shape":[4],"data_offsets":[0,16]}})", four_floats),
       "needs 8"},
      {"numel_overflows",
       RawSafetensors(
           R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})",
           four_floats),
       "overflows"},
      {"bytes_overflow",
       RawSafetensors(
           R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,16]}})",
           four_floats),
       "overflows"},
      {"dim_over_int64",
       RawSafetensors(
           R"({"w":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,16]}})",
           four_floats),
       "overflows"},
      {"overlap",
       RawSafetensors(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                      four_floats),
       "overlap"},
      {"same_range_twice",
       RawSafetensors(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                      R"("b":{"dtype":"I32","shape":[4],"data_offsets":[0,16]}})",
                      four_floats),
       "overlap"},
      {"duplicate_name",
       RawSafetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                      four_floats),
       "listed twice"},
  };
}

TEST(SafetensorsFileTest, CorruptFilesAreDataLoss) {
  ScopedTempDir tmp;
  for (const CorruptCase& c : CorruptCases()) {
    SCOPED_TRACE(c.name);
    const auto path = tmp.path() / (std::string(c.name) + ".safetensors");
    WriteFile(path, c.bytes);
    StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
    ASSERT_FALSE(file.ok());
    EXPECT_EQ(file.status().code(), StatusCode::kDataLoss) << file.status().ToString();
    EXPECT_TRUE(Contains(file.status().message(), path.string())) << file.status().message();
    EXPECT_TRUE(Contains(file.status().message(), c.message)) << file.status().message();
  }
}

TEST(SafetensorsFileTest, ErrorsNameTheTensor) {
  ScopedTempDir tmp;
  const auto path = tmp.path() / "m.safetensors";
  WriteFile(path, RawSafetensors(R"({"encoder.layer.3.output.dense.weight":)"
                                 R"({"dtype":"F32","shape":[4,4],"data_offsets":[0,64]}})",
                                 std::string(16, '\0')));
  StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_TRUE(Contains(file.status().message(), "encoder.layer.3.output.dense.weight"))
      << file.status().message();
}

TEST(SafetensorsFileTest, UnknownDTypeIsInvalidArgument) {
  ScopedTempDir tmp;
  const auto path = tmp.path() / "m.safetensors";
  WriteFile(path, RawSafetensors(R"({"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}})",
                                 std::string(1, '\0')));
  StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(file.status().message(), "\"F4\"")) << file.status().message();
}

TEST(SafetensorsFileTest, MissingFileAndDirectory) {
  ScopedTempDir tmp;
  StatusOr<SafetensorsFile> missing = SafetensorsFile::Open(tmp.path() / "nope.safetensors");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);

  StatusOr<SafetensorsFile> dir = SafetensorsFile::Open(tmp.path());
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(dir.status().message(), "directory")) << dir.status().message();

  EXPECT_EQ(SafetensorsFile::ReadHeaderBytes(tmp.path()).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(SafetensorsFile::ReadHeaderBytes(tmp.path() / "nope").status().code(),
            StatusCode::kNotFound);
}

TEST(SafetensorsFileTest, EmptyHeaderObjectAndPaddedHeaderAreFine) {
  ScopedTempDir tmp;
  WriteFile(tmp.path() / "empty.safetensors", RawSafetensors("{}", ""));
  StatusOr<SafetensorsFile> empty = SafetensorsFile::Open(tmp.path() / "empty.safetensors");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->tensors().empty());

  // Writers pad the header with spaces to align the data section to 8 bytes.
  WriteFile(tmp.path() / "padded.safetensors",
            RawSafetensors(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}     )", "ab"));
  StatusOr<SafetensorsFile> padded = SafetensorsFile::Open(tmp.path() / "padded.safetensors");
  ASSERT_TRUE(padded.ok()) << padded.status().ToString();
  EXPECT_EQ(std::memcmp(padded->Find("w")->data, "ab", 2), 0);
}

TEST(SafetensorsFileTest, ReadHeaderBytesReturnsPrefixAndHeader) {
  ScopedTempDir tmp;
  SafetensorsWriter w;
  w.AddFloats("x", DType::kF32, {1}, {1.0f});
  w.WriteTo(tmp.path() / "x.safetensors");
  StatusOr<std::string> header = SafetensorsFile::ReadHeaderBytes(tmp.path() / "x.safetensors");
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  EXPECT_EQ(*header, RawSafetensors(w.Header(), ""));

  WriteFile(tmp.path() / "bad.safetensors", RawSafetensors(500, "{}", ""));
  EXPECT_EQ(SafetensorsFile::ReadHeaderBytes(tmp.path() / "bad.safetensors").status().code(),
            StatusCode::kDataLoss);
}

// Opening must either fail cleanly or hand out views that lie inside the file; reading every
// byte of every view catches the second (under ASan, or as a crash).
void ExpectOpensCleanlyOrFails(const std::filesystem::path& path) {
  StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  if (!file.ok()) {
    EXPECT_TRUE(file.status().code() == StatusCode::kDataLoss ||
                file.status().code() == StatusCode::kInvalidArgument)
        << file.status().ToString();
    return;
  }
  unsigned sum = 0;
  for (const TensorView& t : file->tensors()) {
    for (size_t i = 0; i < t.nbytes; ++i) sum += static_cast<unsigned>(t.data[i]);
    EXPECT_EQ(t.nbytes, static_cast<size_t>(t.numel()) * DTypeSize(t.dtype));
  }
  (void)sum;
}

TEST(SafetensorsFileTest, EveryTruncationFailsCleanly) {
  ScopedTempDir tmp;
  SafetensorsWriter w;
  w.AddFloats("a", DType::kF32, {3}, {1.0f, 2.0f, 3.0f});
  w.AddFloats("b", DType::kBF16, {2}, {4.0f, 5.0f});
  const std::string good = w.Serialize();
  const auto path = tmp.path() / "t.safetensors";
  for (size_t len = 0; len < good.size(); ++len) {
    SCOPED_TRACE(len);
    WriteFile(path, std::string_view(good).substr(0, len));
    StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
    ASSERT_FALSE(file.ok());
    EXPECT_EQ(file.status().code(), StatusCode::kDataLoss) << file.status().ToString();
  }
}

TEST(SafetensorsFileTest, RandomByteCorruptionNeverCrashes) {
  ScopedTempDir tmp;
  SafetensorsWriter w;
  w.SetMetadata("format", "pt");
  w.AddFloats("layer.0.weight", DType::kF32, {2, 3}, {1, 2, 3, 4, 5, 6});
  w.AddFloats("layer.0.bias", DType::kF16, {3}, {1, 2, 3});
  w.AddRandom("ids", DType::kI64, {4});
  const std::string good = w.Serialize();
  const auto path = tmp.path() / "t.safetensors";
  std::mt19937 rng(42);
  for (int round = 0; round < 600; ++round) {
    std::string bytes = good;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      // Mostly the length prefix and header, where the interesting failures are.
      const size_t limit = rng() % 8 == 0 ? bytes.size() : std::min<size_t>(bytes.size(), 8 + 140);
      bytes[rng() % limit] = static_cast<char>(rng() % 256);
    }
    if (rng() % 4 == 0) bytes.resize(rng() % bytes.size());
    WriteFile(path, bytes);
    ExpectOpensCleanlyOrFails(path);
  }
}

}  // namespace
}  // namespace sluice
