// Export writers: turn the node/edge stream of GraphStore::Export into JSONL, GraphML or
// Cypher text on an ostream (`enrichd export`). Each record is written as it arrives,
// so memory does not grow with the graph.
//
// Formats (DESIGN.md: machine-readable contracts):
//   jsonl:   {"type":"node","id":1,"label":"ip","key":"8.8.8.8","props":{...}}
//            {"type":"edge","id":7,"label":"ENRICHED_BY","src":1,"dst":2,"props":{...}}
//            one object per line, keys in that order.
//   graphml: GraphML 1.0 (namespace http://graphml.graphdrawing.org/xmlns), directed;
//            nodes "n<id>", edges "e<id>"; node data keys "label", "key", "props" (the
//            props as a JSON string) and, when the props have them as scalars, "provider",
//            "kind", "status"; edge data keys "edge_label" and "edge_props". Text is XML
//            escaped; characters XML 1.0 cannot carry are replaced by U+FFFD.
//   cypher:  one statement per line, accepted by Neo4j (cypher-shell) and Apache AGE:
//            CREATE (:ip {_id: 1, key: '8.8.8.8', ...});
//            MATCH (a {_id: 1}), (b {_id: 2}) CREATE (a)-[:ENRICHED_BY {_id: 7, ...}]->(b);
//            Top-level scalar props become properties; nested objects and arrays become
//            JSON strings; nulls are left out. Strings are single-quoted with \\ \' \n \r
//            \t and \uXXXX escapes; labels, types and property names that are not plain
//            identifiers are backtick-quoted.
// Props that are not valid JSON objects are an error (kDataLoss naming the record).
// Invalid UTF-8 in the stored text is replaced by U+FFFD in every format.
// Thread-compatible.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <string_view>

#include "enrichd/graph_store.h"
#include "enrichd/status.h"

namespace enrichd::cli {

enum class ExportFormat { kJsonl, kGraphml, kCypher };

// "jsonl", "graphml", "cypher" (kInvalidArgument otherwise, naming the accepted values).
Result<ExportFormat> ParseExportFormat(std::string_view name);

class ExportWriter : public ExportSink {
 public:
  // Writes what comes before the first record (the GraphML preamble; nothing otherwise).
  virtual Status Begin() = 0;
  // Writes what comes after the last record and flushes. A failed write (disk full,
  // closed pipe) is kUnavailable.
  virtual Status Finish() = 0;
};

// `out` must outlive the writer.
std::unique_ptr<ExportWriter> MakeExportWriter(ExportFormat format, std::ostream& out);

// Exposed for tests and for `show`.
// Replaces invalid UTF-8 sequences by U+FFFD.
std::string SanitizeUtf8(std::string_view s);
// XML character data / attribute value escaping (also drops what XML 1.0 forbids).
std::string XmlEscape(std::string_view s);
// A single-quoted Cypher string literal.
std::string CypherString(std::string_view s);
// A label, relationship type or property name: as is when [A-Za-z_][A-Za-z0-9_]*,
// otherwise `backtick quoted` with backticks doubled.
std::string CypherName(std::string_view s);

}  // namespace enrichd::cli
