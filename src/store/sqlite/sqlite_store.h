// The SQLite backend of GraphStore (see enrichd/graph_store.h for the contract).
#pragma once

#include <memory>
#include <string_view>

#include "enrichd/graph_store.h"

namespace enrichd {

// Opens (creating if needed) the SQLite database at `path` and applies migrations.
// The file is put in WAL mode (readers never block the writer); a busy database is waited
// for up to 5 s, then the call fails with kUnavailable. Several processes may open the same
// file: every write takes the write lock up front (BEGIN IMMEDIATE), so claims never
// overlap. The migrations (sql/sqlite/NNN_name.sql) are compiled into the library.
// Errors: kInvalidArgument (empty path), kUnavailable (cannot open/create the file, or
// locked), kDataLoss (not an SQLite file, corrupt, or an SQLite file with other tables and
// no enrichd schema), kFailedPrecondition (schema newer than this binary).
Result<std::unique_ptr<GraphStore>> OpenSqliteStore(std::string_view path);

}  // namespace enrichd
