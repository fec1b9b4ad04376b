#include "adapters/ip2asn/ip2asn_adapter.h"

#include <algorithm>
#include <fstream>

#include "adapters/common/http_util.h"
#include "adapters/common/options.h"

namespace enrichd::adapters {
namespace {

constexpr std::string_view kName = "ip2asn";
constexpr std::string_view kVersion = "1";

struct Range {
  std::array<uint8_t, 16> start{};  // IPv4 uses the first 4 bytes
  std::array<uint8_t, 16> end{};
  uint32_t asn = 0;
  uint32_t line = 0;
  uint32_t text = 0;  // index into Table::texts
};

struct Table {
  std::vector<Range> v4;
  std::vector<Range> v6;
  // country code, description per range (deduplicated strings are not worth it here).
  std::vector<std::pair<std::string, std::string>> texts;
};

std::vector<std::string_view> SplitTabs(std::string_view line) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (true) {
    const size_t tab = line.find('\t', pos);
    out.push_back(line.substr(pos, tab == std::string_view::npos ? line.npos : tab - pos));
    if (tab == std::string_view::npos) break;
    pos = tab + 1;
  }
  return out;
}

// Whether [start, end] is exactly one CIDR block; its prefix length if so.
std::optional<int> CidrLength(const std::array<uint8_t, 16>& start,
                              const std::array<uint8_t, 16>& end, int nbytes) {
  const int bits = nbytes * 8;
  auto bit = [](const std::array<uint8_t, 16>& a, int b) { return (a[b / 8] >> (7 - b % 8)) & 1; };
  int len = 0;
  while (len < bits && bit(start, len) == bit(end, len)) ++len;
  for (int b = len; b < bits; ++b) {
    if (bit(start, b) != 0 || bit(end, b) != 1) return std::nullopt;
  }
  return len;
}

IpAddress ToIp(const std::array<uint8_t, 16>& bytes, bool v4) {
  if (v4) {
    return IpAddress::V4((uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) |
                         (uint32_t{bytes[2]} << 8) | bytes[3]);
  }
  return IpAddress::V6(bytes);
}

Result<std::shared_ptr<const Table>> Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return InvalidArgumentError("cannot open ip2asn file " + path);
  auto table = std::make_shared<Table>();
  std::string line;
  uint32_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const std::string where = path + ":" + std::to_string(number);
    const auto cols = SplitTabs(line);
    if (cols.size() != 5) {
      return InvalidArgumentError(where + ": expected 5 tab-separated columns, found " +
                                  std::to_string(cols.size()));
    }
    auto start = IpAddress::Parse(cols[0]);
    auto end = IpAddress::Parse(cols[1]);
    if (!start.ok() || !end.ok()) {
      return InvalidArgumentError(where + ": bad range address: " +
                                  (!start.ok() ? start.status() : end.status()).message());
    }
    if (start->family() != end->family()) {
      return InvalidArgumentError(where + ": range mixes IPv4 and IPv6");
    }
    if (*end < *start) return InvalidArgumentError(where + ": range start is after its end");
    auto asn = ParseAsnText(cols[2]);
    if (!asn || (cols[2][0] < '0' || cols[2][0] > '9')) {
      return InvalidArgumentError(where + ": bad AS number");
    }
    Range r;
    r.start = start->bytes();
    r.end = end->bytes();
    r.asn = static_cast<uint32_t>(*asn);
    r.line = number;
    r.text = static_cast<uint32_t>(table->texts.size());
    table->texts.emplace_back(std::string(cols[3]), std::string(cols[4]));
    (start->is_v4() ? table->v4 : table->v6).push_back(r);
  }
  if (in.bad()) return InvalidArgumentError("cannot read ip2asn file " + path);
  for (auto* ranges : {&table->v4, &table->v6}) {
    std::sort(ranges->begin(), ranges->end(),
              [](const Range& a, const Range& b) { return a.start < b.start; });
    for (size_t i = 1; i < ranges->size(); ++i) {
      if ((*ranges)[i].start <= (*ranges)[i - 1].end) {
        return InvalidArgumentError(path + ":" + std::to_string((*ranges)[i].line) +
                                    ": range overlaps the one on line " +
                                    std::to_string((*ranges)[i - 1].line));
      }
    }
  }
  return std::shared_ptr<const Table>(std::move(table));
}

class Ip2AsnAdapter final : public SyncAdapter {
 public:
  Ip2AsnAdapter(std::string path, std::shared_ptr<const Table> table)
      : path_(std::move(path)), table_(std::move(table)) {
    info_ = {std::string(kName), std::string(kVersion), std::string(kKindAsn)};
  }
  std::string_view name() const override { return kName; }
  std::string_view version() const override { return kVersion; }
  std::string_view kind() const override { return kKindAsn; }
  bool external() const override { return false; }

 protected:
  EnrichmentResult DoLookup(const Item& item) override {
    EnrichmentResult r = LocalResult(info_, path_, "");
    if (!item.ip) {
      SetOutcome(r, Outcome::kSkipped, "not an IP address");
      return r;
    }
    const IpAddress ip = item.ip->Unmapped();
    const auto& ranges = ip.is_v4() ? table_->v4 : table_->v6;
    const auto key = ip.bytes();
    // Last range whose start <= ip.
    auto it = std::upper_bound(
        ranges.begin(), ranges.end(), key,
        [](const std::array<uint8_t, 16>& k, const Range& range) { return k < range.start; });
    if (it == ranges.begin() || key > std::prev(it)->end) {
      SetNoData(r, "not in any range of the file");
      return r;
    }
    const Range& range = *std::prev(it);
    const auto& [country, description] = table_->texts[range.text];
    const IpAddress first = ToIp(range.start, ip.is_v4());
    const IpAddress last = ToIp(range.end, ip.is_v4());
    const std::string raw = first.ToString() + "\t" + last.ToString() + "\t" +
                            std::to_string(range.asn) + "\t" + country + "\t" + description;
    r = LocalResult(info_, path_, raw);
    Json extra = {{"range_start", first.ToString()}, {"range_end", last.ToString()}};
    if (range.asn == 0) {
      SetNoData(r, "not routed", Json{{"extra", extra}});
      return r;
    }
    Json data = Json::object();
    data["asn"] = range.asn;
    if (!description.empty()) data["org"] = description;
    if (auto len = CidrLength(range.start, range.end, ip.is_v4() ? 4 : 16)) {
      data["prefix"] = first.ToString() + "/" + std::to_string(*len);
    }
    if (!country.empty() && country != "None") data["country_code"] = country;
    data["extra"] = std::move(extra);
    SetOk(r, data);
    return r;
  }

 private:
  std::string path_;
  std::shared_ptr<const Table> table_;
  AdapterInfo info_;
};

}  // namespace

Result<std::unique_ptr<Adapter>> MakeIp2AsnAdapter(const AdapterSpec& spec) {
  ENRICHD_RETURN_IF_ERROR(CheckKnownOptions(spec.options, {"file"}));
  ENRICHD_ASSIGN_OR_RETURN(std::string path, StringOption(spec.options, "file", std::nullopt));
  if (!spec.kind.empty() && spec.kind != kKindAsn) {
    return InvalidArgumentError("kind \"" + spec.kind + "\" is not supported (supported: asn)");
  }
  ENRICHD_ASSIGN_OR_RETURN(auto table, Load(path));
  return std::unique_ptr<Adapter>(new Ip2AsnAdapter(path, std::move(table)));
}

void RegisterIp2Asn(AdapterRegistry& registry) {
  registry.Register(std::string(kName), MakeIp2AsnAdapter);
}

}  // namespace enrichd::adapters
