#include "enrichd/http.h"

#include <strings.h>

namespace enrichd {

std::string_view TransportErrorName(TransportError e) {
  switch (e) {
    case TransportError::kNone:
      return "none";
    case TransportError::kConnect:
      return "connect";
    case TransportError::kTimeout:
      return "timeout";
    case TransportError::kResponseTooLarge:
      return "response_too_large";
    case TransportError::kReceive:
      return "receive";
    case TransportError::kTls:
      return "tls";
    case TransportError::kCancelled:
      return "cancelled";
    case TransportError::kOther:
      return "other";
  }
  return "other";
}

const std::string* HttpResponse::Header(std::string_view name) const {
  for (const auto& h : headers) {
    if (h.name.size() == name.size() && strncasecmp(h.name.data(), name.data(), name.size()) == 0) {
      return &h.value;
    }
  }
  return nullptr;
}

}  // namespace enrichd
