#include "loadgen_options.h"

#include <fmt/format.h>

#include <boost/asio/ip/address.hpp>
#include <charconv>
#include <cmath>

namespace sluice::loadgen {

StatusOr<Target> ParseTarget(std::string_view url) {
  std::string_view rest = url;
  if (rest.starts_with("https://")) {
    return InvalidArgument("https targets are not supported; use http://");
  }
  if (rest.starts_with("http://")) rest.remove_prefix(7);
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  Target target;
  target.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (authority.empty()) return InvalidArgument(fmt::format("no host in url \"{}\"", url));
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgument("user info in the url is not supported");
  }
  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {  // [::1]:8080
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return InvalidArgument("unterminated [ in url host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return InvalidArgument("expected :port after ]");
      port = after.substr(1);
    }
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (!port.empty() || authority.back() == ':') {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return InvalidArgument(fmt::format("bad port \"{}\" in url", port));
    }
    target.port = static_cast<uint16_t>(value);
  }
  if (host == "localhost") {
    target.host = "127.0.0.1";
    return target;
  }
  boost::system::error_code ec;
  const boost::asio::ip::address address = boost::asio::ip::make_address(std::string(host), ec);
  if (ec) {
    return InvalidArgument(fmt::format(
        "host \"{}\" is not localhost or an IP literal; only loopback targets are allowed", host));
  }
  if (!address.is_loopback()) {
    return InvalidArgument(
        fmt::format("host {} is not a loopback address; only loopback targets are allowed", host));
  }
  target.host = address.to_string();
  return target;
}

Status ValidateOptions(const LoadgenOptions& o) {
  const bool open_loop = o.rate > 0;
  if (open_loop == o.closed_loop) {
    return InvalidArgument("choose exactly one of --rate R (open loop) and --closed");
  }
  if (!std::isfinite(o.rate) || o.rate < 0) return InvalidArgument("--rate must be >= 0");
  if (!(o.duration_s > 0) || !std::isfinite(o.duration_s)) {
    return InvalidArgument("--duration must be > 0 seconds");
  }
  if (!(o.warmup_s >= 0) || !std::isfinite(o.warmup_s)) {
    return InvalidArgument("--warmup must be >= 0 seconds");
  }
  if (!(o.timeout_s > 0)) return InvalidArgument("--timeout must be > 0 seconds");
  if (o.threads < 1) return InvalidArgument("--threads must be >= 1");
  if (o.connections < o.threads || o.connections > 10000) {
    return InvalidArgument(
        fmt::format("--connections must be between --threads ({}) and 10000", o.threads));
  }
  return Status::Ok();
}

}  // namespace sluice::loadgen
