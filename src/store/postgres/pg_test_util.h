// Test-only helpers for the PostgreSQL backend's tests and benchmark: an isolated,
// empty schema per test on the server named by ENRICHD_TEST_PG_URL.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>

#include "enrichd/status.h"
#include "store/postgres/pg_connection.h"

namespace enrichd::pg {

// The server under test, or "" when none is configured (tests then GTEST_SKIP()).
inline std::string TestServerUrl(const char* env = "ENRICHD_TEST_PG_URL") {
  const char* url = std::getenv(env);
  return url != nullptr ? url : "";
}

// `url` with search_path set to `schema` for every session it opens.
inline std::string UrlWithSchema(const std::string& url, const std::string& schema) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" +
         schema;
}

// A fresh schema "enrichd_test_<pid>_<n>" on the test server, dropped on destruction.
class TestSchema {
 public:
  static Result<std::unique_ptr<TestSchema>> Create(const std::string& server_url) {
    static std::atomic<int> counter{0};
    auto admin = Connection::Open(server_url);
    if (!admin.ok()) return admin.status();
    std::string name =
        "enrichd_test_" + std::to_string(getpid()) + "_" + std::to_string(counter.fetch_add(1));
    Status s = (*admin)
                   ->Exec("DROP SCHEMA IF EXISTS " + name + " CASCADE; CREATE SCHEMA " + name)
                   .status();
    if (!s.ok()) return s;
    return std::unique_ptr<TestSchema>(
        new TestSchema(std::move(admin).value(), name, UrlWithSchema(server_url, name)));
  }
  ~TestSchema() { (void)admin_->Exec("DROP SCHEMA IF EXISTS " + name_ + " CASCADE"); }

  const std::string& name() const { return name_; }
  // The URL a store opens to live in this schema.
  const std::string& url() const { return url_; }
  // A raw connection (search_path not set: qualify names with name()).
  Connection& admin() { return *admin_; }

 private:
  TestSchema(std::unique_ptr<Connection> admin, std::string name, std::string url)
      : admin_(std::move(admin)), name_(std::move(name)), url_(std::move(url)) {}
  std::unique_ptr<Connection> admin_;
  std::string name_;
  std::string url_;
};

}  // namespace enrichd::pg
