#include <array>
#include <utility>

#include "enrichd/graph_store.h"

namespace enrichd {
namespace {
constexpr std::array<std::pair<TaskStatus, std::string_view>, 6> kNames{{
    {TaskStatus::kPending, "pending"},
    {TaskStatus::kRunning, "running"},
    {TaskStatus::kDone, "done"},
    {TaskStatus::kNoData, "no_data"},
    {TaskStatus::kSkipped, "skipped"},
    {TaskStatus::kDead, "dead"},
}};
}  // namespace

std::string_view TaskStatusName(TaskStatus s) {
  for (const auto& [value, name] : kNames) {
    if (value == s) return name;
  }
  return "unknown";
}

std::optional<TaskStatus> TaskStatusFromName(std::string_view name) {
  for (const auto& [value, n] : kNames) {
    if (n == name) return value;
  }
  return std::nullopt;
}

}  // namespace enrichd
