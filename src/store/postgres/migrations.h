// The PostgreSQL schema migrations (sql/postgres/NNNN_name.sql), embedded at build time.
#pragma once

#include <span>

namespace enrichd::pg {

struct Migration {
  int version;       // NNNN of the file name; strictly increasing
  const char* name;  // file name, for messages
  const char* sql;   // one or more statements, applied in one transaction
};

// Sorted by version. The last one is the newest schema this binary understands.
std::span<const Migration> Migrations();

}  // namespace enrichd::pg
