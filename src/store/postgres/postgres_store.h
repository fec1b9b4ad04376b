// The PostgreSQL backend of GraphStore (see enrichd/graph_store.h for the contract).
#pragma once

#include <memory>
#include <string_view>

#include "enrichd/graph_store.h"

namespace enrichd {

// Connects to `url` (postgresql://...) and applies migrations.
Result<std::unique_ptr<GraphStore>> OpenPostgresStore(std::string_view url);

}  // namespace enrichd
