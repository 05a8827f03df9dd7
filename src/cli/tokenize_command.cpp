// `sluice tokenize`: UTF-8 lines on stdin -> {"ids":[...]} per line on stdout.
#include <simdjson.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "common/status.h"
#include "tokenizer/tokenizer.h"

namespace sluice::cli {
namespace {

struct TokenizeArgs {
  std::string model_dir;
  std::optional<size_t> max_length;
  bool jsonl = false;
};

// Bad input or usage exits with 2, anything else with 1.
int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kOutOfRange:
    case StatusCode::kTooLarge:
      return 2;
    default:
      return 1;
  }
}

int ReportError(const Status& status) {
  std::fprintf(stderr, "sluice: error: %s\n", status.message().c_str());
  return ExitCodeFor(status);
}

// Buffered stdout. Flushed before every read of stdin, so that interactive use sees each
// answer as soon as its line is in.
class Output {
 public:
  Status AppendIds(const std::vector<int32_t>& ids) {
    buffer_.append("{\"ids\":[");
    char digits[16];
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i > 0) buffer_.push_back(',');
      auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), ids[i]);
      buffer_.append(digits, end);
    }
    buffer_.append("]}\n");
    return buffer_.size() >= (1 << 16) ? Flush() : Status::Ok();
  }
  Status Flush() {
    if (!buffer_.empty() &&
        std::fwrite(buffer_.data(), 1, buffer_.size(), stdout) != buffer_.size()) {
      return Unavailable(std::string("cannot write to stdout: ") + std::strerror(errno));
    }
    buffer_.clear();
    if (std::fflush(stdout) != 0) {
      return Unavailable(std::string("cannot write to stdout: ") + std::strerror(errno));
    }
    return Status::Ok();
  }

 private:
  std::string buffer_;
};

// Splits stdin into lines ("\n" removed; a last line without "\n" counts).
class LineReader {
 public:
  explicit LineReader(Output* output) : output_(output) {}

  // Sets *line to the next line; false at the end of input.
  StatusOr<bool> Next(std::string_view* line) {
    while (true) {
      size_t newline = buffer_.find('\n', start_);
      if (newline != std::string::npos) {
        *line = std::string_view(buffer_).substr(start_, newline - start_);
        start_ = newline + 1;
        return true;
      }
      if (eof_) {
        if (start_ >= buffer_.size()) return false;
        *line = std::string_view(buffer_).substr(start_);
        start_ = buffer_.size();
        return true;
      }
      buffer_.erase(0, start_);
      start_ = 0;
      SLUICE_RETURN_IF_ERROR(output_->Flush());
      SLUICE_RETURN_IF_ERROR(Fill());
    }
  }

 private:
  Status Fill() {
    size_t old_size = buffer_.size();
    buffer_.resize(old_size + kChunk);
    ssize_t n;
    do {
      n = ::read(STDIN_FILENO, buffer_.data() + old_size, kChunk);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      buffer_.resize(old_size);
      return Unavailable(std::string("cannot read stdin: ") + std::strerror(errno));
    }
    buffer_.resize(old_size + static_cast<size_t>(n));
    if (n == 0) eof_ = true;
    return Status::Ok();
  }

  static constexpr size_t kChunk = 1 << 20;
  Output* output_;
  std::string buffer_;
  size_t start_ = 0;
  bool eof_ = false;
};

Status RunTokenize(const TokenizeArgs& args) {
  SLUICE_ASSIGN_OR_RETURN(
      std::unique_ptr<Tokenizer> tokenizer,
      Tokenizer::FromFile(std::filesystem::path(args.model_dir) / "tokenizer.json"));
  EncodeOptions options;
  options.max_length = args.max_length;
  if (args.max_length && *args.max_length < tokenizer->num_special_tokens_single()) {
    return InvalidArgument("--max-length must be at least " +
                           std::to_string(tokenizer->num_special_tokens_single()) +
                           " (the special tokens)");
  }

  Output output;
  LineReader reader(&output);
  simdjson::dom::parser parser;
  std::string_view line;
  for (size_t line_number = 1;; ++line_number) {
    SLUICE_ASSIGN_OR_RETURN(bool more, reader.Next(&line));
    if (!more) break;
    std::string_view text = line;
    if (args.jsonl) {
      simdjson::dom::element element;
      simdjson::error_code error = parser.parse(line.data(), line.size()).get(element);
      if (error == simdjson::SUCCESS && element.get_string().get(text) != simdjson::SUCCESS) {
        error = simdjson::INCORRECT_TYPE;
      }
      if (error != simdjson::SUCCESS) {
        SLUICE_RETURN_IF_ERROR(output.Flush());
        return InvalidArgument("line " + std::to_string(line_number) + ": not a JSON string (" +
                               simdjson::error_message(error) + ")");
      }
    }
    StatusOr<Encoding> encoding = tokenizer->Encode(text, options);
    if (!encoding.ok()) {
      SLUICE_RETURN_IF_ERROR(output.Flush());
      return encoding.status().WithContext("line " + std::to_string(line_number));
    }
    SLUICE_RETURN_IF_ERROR(output.AppendIds(encoding->ids));
  }
  return output.Flush();
}

}  // namespace

void AddTokenizeCommand(CLI::App& app, int* exit_code) {
  CLI::App* cmd = app.add_subcommand(
      "tokenize",
      "Tokenize UTF-8 lines from stdin; one {\"ids\":[...]} line out per line in, special "
      "tokens added");
  auto args = std::make_shared<TokenizeArgs>();
  cmd->add_option("--model", args->model_dir, "Model directory holding tokenizer.json")->required();
  cmd->add_option("--max-length", args->max_length,
                  "Truncate each result (special tokens included) to N ids; default: no "
                  "truncation")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            bool digits =
                !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
            return digits ? "" : "must be a positive integer";
          },
          "N"));
  cmd->add_flag("--jsonl", args->jsonl,
                "Each input line is a JSON string (texts may then hold newlines)");
  cmd->callback([args, exit_code] {
    Status status = RunTokenize(*args);
    *exit_code = status.ok() ? 0 : ReportError(status);
  });
}

}  // namespace sluice::cli
