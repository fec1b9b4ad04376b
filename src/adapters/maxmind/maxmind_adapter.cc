#include "adapters/maxmind/maxmind_adapter.h"

#include <arpa/inet.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmath>
#include <cstring>

#include "adapters/common/http_util.h"
#include "adapters/common/options.h"

namespace enrichd::adapters {
namespace {

constexpr std::string_view kName = "maxmind";
constexpr std::string_view kVersion = "1";
constexpr int kMaxDepth = 32;

// Converts a flattened entry data list (from *node on) into JSON. Returns false on a
// malformed list (never trusts the counts it reads).
bool ToJson(MMDB_entry_data_list_s*& node, Json& out, int depth) {
  if (node == nullptr || depth > kMaxDepth) return false;
  const MMDB_entry_data_s& d = node->entry_data;
  switch (d.type) {
    case MMDB_DATA_TYPE_MAP: {
      const uint32_t size = d.data_size;
      out = Json::object();
      node = node->next;
      for (uint32_t i = 0; i < size; ++i) {
        if (node == nullptr || node->entry_data.type != MMDB_DATA_TYPE_UTF8_STRING) return false;
        std::string key(node->entry_data.utf8_string, node->entry_data.data_size);
        node = node->next;
        Json value;
        if (!ToJson(node, value, depth + 1)) return false;
        out[key] = std::move(value);
      }
      return true;
    }
    case MMDB_DATA_TYPE_ARRAY: {
      const uint32_t size = d.data_size;
      out = Json::array();
      node = node->next;
      for (uint32_t i = 0; i < size; ++i) {
        Json value;
        if (!ToJson(node, value, depth + 1)) return false;
        out.push_back(std::move(value));
      }
      return true;
    }
    case MMDB_DATA_TYPE_UTF8_STRING:
      out = std::string(d.utf8_string, d.data_size);
      break;
    case MMDB_DATA_TYPE_DOUBLE:
      if (!std::isfinite(d.double_value)) return false;
      out = d.double_value;
      break;
    case MMDB_DATA_TYPE_FLOAT:
      if (!std::isfinite(d.float_value)) return false;
      out = static_cast<double>(d.float_value);
      break;
    case MMDB_DATA_TYPE_UINT16:
      out = d.uint16;
      break;
    case MMDB_DATA_TYPE_UINT32:
      out = d.uint32;
      break;
    case MMDB_DATA_TYPE_INT32:
      out = d.int32;
      break;
    case MMDB_DATA_TYPE_UINT64:
      out = d.uint64;
      break;
    case MMDB_DATA_TYPE_UINT128: {
      static constexpr char kHex[] = "0123456789abcdef";
      std::string hex = "0x";
#if MMDB_UINT128_IS_BYTE_ARRAY
      for (int i = 0; i < 16; ++i) {
        hex.push_back(kHex[d.uint128[i] >> 4]);
        hex.push_back(kHex[d.uint128[i] & 0xf]);
      }
#else
      for (int shift = 124; shift >= 0; shift -= 4) {
        hex.push_back(kHex[static_cast<unsigned>(d.uint128 >> shift) & 0xf]);
      }
#endif
      out = hex;
      break;
    }
    case MMDB_DATA_TYPE_BOOLEAN:
      out = d.boolean;
      break;
    case MMDB_DATA_TYPE_BYTES: {
      static constexpr char kHex[] = "0123456789abcdef";
      std::string hex;
      for (uint32_t i = 0; i < d.data_size; ++i) {
        hex.push_back(kHex[d.bytes[i] >> 4]);
        hex.push_back(kHex[d.bytes[i] & 0xf]);
      }
      out = hex;
      break;
    }
    default:
      return false;
  }
  node = node->next;
  return true;
}

const Json* Path(const Json& j, std::initializer_list<std::string_view> keys) {
  const Json* cur = &j;
  for (auto k : keys) {
    cur = Member(*cur, k);
    if (cur == nullptr) return nullptr;
  }
  return cur;
}

std::optional<std::string> PathString(const Json& j, std::initializer_list<std::string_view> keys) {
  const Json* v = Path(j, keys);
  if (v == nullptr || !v->is_string() || v->get_ref<const std::string&>().empty()) {
    return std::nullopt;
  }
  return v->get<std::string>();
}

std::optional<double> PathNumber(const Json& j, std::initializer_list<std::string_view> keys) {
  const Json* v = Path(j, keys);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  return v->get<double>();
}

void Put(Json& out, const char* key, const std::optional<std::string>& v) {
  if (v) out[key] = *v;
}

// The network `ip` falls in, given the prefix length libmaxminddb reported for a tree
// of `tree_bits` (128 for IPv6 databases) -- IPv4 lookups in an IPv6 tree count the
// 96 bits of the ::/96 prefix.
std::string NetworkText(const IpAddress& ip, int netmask, bool tree_is_v6) {
  int bits = netmask;
  if (ip.is_v4() && tree_is_v6) bits -= 96;
  const int max_bits = ip.is_v4() ? 32 : 128;
  bits = std::clamp(bits, 0, max_bits);
  std::array<uint8_t, 16> bytes = ip.bytes();
  const int nbytes = ip.is_v4() ? 4 : 16;
  for (int i = 0; i < nbytes; ++i) {
    const int keep = std::clamp(bits - 8 * i, 0, 8);
    bytes[i] &= static_cast<uint8_t>(keep == 0 ? 0 : (0xff << (8 - keep)) & 0xff);
  }
  IpAddress network = ip.is_v4()
                          ? IpAddress::V4((uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) |
                                          (uint32_t{bytes[2]} << 8) | bytes[3])
                          : IpAddress::V6(bytes);
  return network.ToString() + "/" + std::to_string(bits);
}

class MaxMindAdapter final : public SyncAdapter {
 public:
  MaxMindAdapter(std::string path, std::string kind) : path_(std::move(path)) {
    info_ = {std::string(kName), std::string(kVersion), std::move(kind)};
  }
  ~MaxMindAdapter() override {
    if (open_) MMDB_close(&mmdb_);
  }
  MaxMindAdapter(const MaxMindAdapter&) = delete;
  MaxMindAdapter& operator=(const MaxMindAdapter&) = delete;

  // Opens the database; the error names the file.
  Status Open() {
    const int status = MMDB_open(path_.c_str(), MMDB_MODE_MMAP, &mmdb_);
    if (status != MMDB_SUCCESS) {
      const StatusCode code = status == MMDB_FILE_OPEN_ERROR || status == MMDB_IO_ERROR
                                  ? StatusCode::kInvalidArgument
                                  : StatusCode::kDataLoss;
      return Status(code, "cannot open MaxMind database " + path_ + ": " + MMDB_strerror(status));
    }
    open_ = true;
    return Status::Ok();
  }

  const MMDB_s& mmdb() const { return mmdb_; }
  void set_kind(std::string kind) { info_.kind = std::move(kind); }

  std::string_view name() const override { return kName; }
  std::string_view version() const override { return kVersion; }
  std::string_view kind() const override { return info_.kind; }
  bool external() const override { return false; }

 protected:
  EnrichmentResult DoLookup(const Item& item) override {
    EnrichmentResult r = LocalResult(info_, path_, "");
    if (!item.ip) {
      SetOutcome(r, Outcome::kSkipped, "not an IP address");
      return r;
    }
    const IpAddress ip = item.ip->Unmapped();
    const bool tree_is_v6 = mmdb_.metadata.ip_version == 6;
    if (!ip.is_v4() && !tree_is_v6) {
      SetNoData(r, "IPv6 address in an IPv4-only database");
      return r;
    }
    sockaddr_storage storage{};
    if (ip.is_v4()) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
      sin->sin_family = AF_INET;
      std::memcpy(&sin->sin_addr, ip.bytes().data(), 4);
    } else {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
      sin6->sin6_family = AF_INET6;
      std::memcpy(&sin6->sin6_addr, ip.bytes().data(), 16);
    }
    int mmdb_error = MMDB_SUCCESS;
    MMDB_lookup_result_s found =
        MMDB_lookup_sockaddr(&mmdb_, reinterpret_cast<const sockaddr*>(&storage), &mmdb_error);
    if (mmdb_error != MMDB_SUCCESS) {
      SetOutcome(r, Outcome::kPermanent,
                 std::string("corrupt database: ") + MMDB_strerror(mmdb_error));
      return r;
    }
    const std::string network = NetworkText(ip, found.netmask, tree_is_v6);
    if (!found.found_entry) {
      SetNoData(r, "not in database", Json{{"network", network}});
      return r;
    }
    MMDB_entry_data_list_s* list = nullptr;
    const int status = MMDB_get_entry_data_list(&found.entry, &list);
    Json record;
    bool ok = status == MMDB_SUCCESS;
    if (ok) {
      MMDB_entry_data_list_s* node = list;
      ok = ToJson(node, record, 0);
    }
    MMDB_free_entry_data_list(list);
    if (!ok) {
      SetOutcome(r, Outcome::kPermanent,
                 std::string("corrupt database: ") +
                     (status != MMDB_SUCCESS ? MMDB_strerror(status) : "unreadable record"));
      return r;
    }
    const std::string raw = DumpJson(record);
    r = LocalResult(info_, path_, raw);
    Normalise(record, network, r);
    return r;
  }

 private:
  void Normalise(const Json& rec, const std::string& network, EnrichmentResult& r) const {
    Json data = Json::object();
    Json extra = Json::object();
    if (info_.kind == kKindAsn) {
      const Json* number = Member(rec, "autonomous_system_number");
      const auto asn = number ? ParseAsnValue(*number) : std::nullopt;
      if (!asn) {
        SetNoData(r, "no ASN in record", Json{{"network", network}});
        return;
      }
      data["asn"] = *asn;
      auto org = PathString(rec, {"autonomous_system_organization"});
      if (!org) org = PathString(rec, {"organization"});
      if (!org) org = PathString(rec, {"isp"});
      Put(data, "org", org);
      data["prefix"] = network;
      Put(extra, "isp", PathString(rec, {"isp"}));
      Put(extra, "organization", PathString(rec, {"organization"}));
    } else {
      Put(data, "country_code", PathString(rec, {"country", "iso_code"}));
      Put(data, "country", PathString(rec, {"country", "names", "en"}));
      const Json* subdivisions = Member(rec, "subdivisions");
      if (subdivisions && subdivisions->is_array() && !subdivisions->empty()) {
        Put(data, "region", PathString((*subdivisions)[0], {"names", "en"}));
        Put(extra, "region_code", PathString((*subdivisions)[0], {"iso_code"}));
      }
      Put(data, "city", PathString(rec, {"city", "names", "en"}));
      const auto lat = PathNumber(rec, {"location", "latitude"});
      const auto lon = PathNumber(rec, {"location", "longitude"});
      if (lat && lon) {
        data["lat"] = *lat;
        data["lon"] = *lon;
      }
      Put(data, "postal", PathString(rec, {"postal", "code"}));
      Put(data, "timezone", PathString(rec, {"location", "time_zone"}));
      if (auto acc = PathNumber(rec, {"location", "accuracy_radius"})) data["accuracy_km"] = *acc;
      if (data.empty()) {
        SetNoData(r, "no location in record", Json{{"network", network}});
        return;
      }
      extra["network"] = network;
      Put(extra, "continent_code", PathString(rec, {"continent", "code"}));
      Put(extra, "registered_country_code", PathString(rec, {"registered_country", "iso_code"}));
    }
    if (!extra.empty()) data["extra"] = std::move(extra);
    SetOk(r, data);
  }

  std::string path_;
  AdapterInfo info_;
  MMDB_s mmdb_{};
  bool open_ = false;
};

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

Result<std::unique_ptr<Adapter>> MakeMaxMindAdapter(const AdapterSpec& spec) {
  ENRICHD_RETURN_IF_ERROR(CheckKnownOptions(spec.options, {"database"}));
  ENRICHD_ASSIGN_OR_RETURN(std::string path, StringOption(spec.options, "database", std::nullopt));
  if (!spec.kind.empty() && spec.kind != kKindAsn && spec.kind != kKindGeo) {
    return InvalidArgumentError("kind \"" + spec.kind +
                                "\" is not supported (supported: asn, geo)");
  }
  auto adapter = std::make_unique<MaxMindAdapter>(path, spec.kind);
  ENRICHD_RETURN_IF_ERROR(adapter->Open());
  const char* raw_type = adapter->mmdb().metadata.database_type;
  const std::string type = raw_type ? raw_type : "";
  std::string kind;
  if (Contains(type, "City") || Contains(type, "Country")) {
    kind = std::string(kKindGeo);
  } else if (Contains(type, "ASN") || Contains(type, "ISP")) {
    kind = std::string(kKindAsn);
  }
  if (kind.empty()) {
    if (spec.kind.empty()) {
      return InvalidArgumentError("MaxMind database " + path + " has unsupported type \"" + type +
                                  "\" (set kind: asn or geo to read it anyway)");
    }
    kind = spec.kind;
  } else if (!spec.kind.empty() && spec.kind != kind) {
    return InvalidArgumentError("MaxMind database " + path + " of type \"" + type +
                                "\" gives kind " + kind + ", not " + spec.kind);
  }
  adapter->set_kind(std::move(kind));
  return std::unique_ptr<Adapter>(std::move(adapter));
}

void RegisterMaxMind(AdapterRegistry& registry) {
  registry.Register(std::string(kName), MakeMaxMindAdapter);
}

}  // namespace enrichd::adapters
