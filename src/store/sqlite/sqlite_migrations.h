// The SQLite schema migrations, embedded at build time from sql/sqlite/NNN_name.sql
// (see CMakeLists.txt). Internal to the SQLite backend.
#pragma once

#include <span>

namespace enrichd {

struct SqliteMigration {
  int version;       // 1, 2, ... without gaps
  const char* name;  // file name, e.g. "001_initial.sql"
  const char* sql;   // the whole script
};

// In version order. The last entry's version is the newest schema this binary knows.
std::span<const SqliteMigration> SqliteMigrations();

}  // namespace enrichd
