#include "enrichd/graph_store.h"

#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

namespace enrichd {

Result<std::unique_ptr<GraphStore>> OpenGraphStore(std::string_view url) {
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    return OpenPostgresStore(url);
  }
  if (url.starts_with("sqlite://")) return OpenSqliteStore(url.substr(9));
  if (url.find("://") != std::string_view::npos) {
    return InvalidArgumentError("unsupported store URL '" +
                                std::string(url.substr(0, url.find("://"))) +
                                "://...': use sqlite://PATH or postgresql://...");
  }
  return OpenSqliteStore(url);  // a bare path
}

}  // namespace enrichd
