#include "store/common/node_order.h"

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <unordered_map>

namespace enrichd::store {
namespace {

// Big-endian value of up to 8 bytes of `s` from `at`, zero-padded: comparing two of these
// compares those bytes as memcmp does (keys hold no NUL, so a shorter key sorts first).
uint64_t PrefixWord(std::string_view s, std::size_t at) {
  uint64_t w = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    w <<= 8;
    if (at + i < s.size()) w |= static_cast<unsigned char>(s[at + i]);
  }
  return w;
}

}  // namespace

void SortByLabelAndKey(std::vector<const SourceNode*>& nodes) {
  // Each label's rank in byte order. A batch usually has one label, so the previous
  // node's label is checked before the hash map.
  std::unordered_map<std::string_view, uint32_t> label_ids;
  std::vector<std::string_view> labels;  // by id
  std::vector<uint32_t> node_label(nodes.size());
  std::string_view last_label;
  uint32_t last_id = 0;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const std::string_view label = nodes[i]->label;
    if (labels.empty() || label != last_label) {
      auto [it, added] = label_ids.try_emplace(label, static_cast<uint32_t>(labels.size()));
      if (added) labels.push_back(label);
      last_label = label;
      last_id = it->second;
    }
    node_label[i] = last_id;
  }
  std::vector<uint32_t> by_rank(labels.size());
  for (uint32_t id = 0; id < by_rank.size(); ++id) by_rank[id] = id;
  std::sort(by_rank.begin(), by_rank.end(),
            [&](uint32_t x, uint32_t y) { return labels[x] < labels[y]; });
  std::vector<uint32_t> rank_of(labels.size());
  for (uint32_t r = 0; r < by_rank.size(); ++r) rank_of[by_rank[r]] = r;
  struct Entry {
    uint32_t label_rank;
    uint64_t key_hi;
    uint64_t key_lo;
    const SourceNode* node;
  };
  std::vector<Entry> entries;
  entries.reserve(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const SourceNode* n = nodes[i];
    entries.push_back({rank_of[node_label[i]], PrefixWord(n->key, 0), PrefixWord(n->key, 8), n});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.label_rank != b.label_rank) return a.label_rank < b.label_rank;
    if (a.key_hi != b.key_hi) return a.key_hi < b.key_hi;
    if (a.key_lo != b.key_lo) return a.key_lo < b.key_lo;
    return a.node->key < b.node->key;  // same first 16 bytes
  });
  for (std::size_t i = 0; i < entries.size(); ++i) nodes[i] = entries[i].node;
}

}  // namespace enrichd::store
