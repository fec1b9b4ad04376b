#include "cli/export_writer.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace enrichd::cli {
namespace {

StoredNode Ip() { return {1, "ip", "8.8.8.8", "{}"}; }
StoredNode Enrichment() {
  return {2, "enrichment", "ipinfo:1",
          R"({"provider":"ipinfo","kind":"geo","status":"ok",)"
          R"("data":{"country_code":"US","lat":37.386},"http_status":200,)"
          R"("superseded":false,"fetched_at":1764339906123,"note":null})"};
}
StoredEdge Edge() { return {7, "ENRICHED_BY", 1, 2, R"({"provider":"ipinfo"})"}; }

std::string Export(ExportFormat format, const std::vector<StoredNode>& nodes,
                   const std::vector<StoredEdge>& edges, Status* status = nullptr) {
  std::ostringstream out;
  auto w = MakeExportWriter(format, out);
  Status s = w->Begin();
  for (const auto& n : nodes) {
    if (s.ok()) s = w->OnNode(n);
  }
  for (const auto& e : edges) {
    if (s.ok()) s = w->OnEdge(e);
  }
  if (s.ok()) s = w->Finish();
  if (status) {
    *status = s;
  } else {
    EXPECT_TRUE(s.ok()) << s;
  }
  return out.str();
}

TEST(JsonlExportTest, ExactDocumentedShape) {
  EXPECT_EQ(Export(ExportFormat::kJsonl, {Ip(), Enrichment()}, {Edge()}),
            "{\"type\":\"node\",\"id\":1,\"label\":\"ip\",\"key\":\"8.8.8.8\",\"props\":{}}\n"
            "{\"type\":\"node\",\"id\":2,\"label\":\"enrichment\",\"key\":\"ipinfo:1\","
            "\"props\":{\"provider\":\"ipinfo\",\"kind\":\"geo\",\"status\":\"ok\","
            "\"data\":{\"country_code\":\"US\",\"lat\":37.386},\"http_status\":200,"
            "\"superseded\":false,\"fetched_at\":1764339906123,\"note\":null}}\n"
            "{\"type\":\"edge\",\"id\":7,\"label\":\"ENRICHED_BY\",\"src\":1,\"dst\":2,"
            "\"props\":{\"provider\":\"ipinfo\"}}\n");
}

TEST(JsonlExportTest, EscapesAndReplacesInvalidUtf8) {
  StoredNode n{3, "domain", "a\"b\\c\xff", "{}"};
  EXPECT_EQ(Export(ExportFormat::kJsonl, {n}, {}),
            "{\"type\":\"node\",\"id\":3,\"label\":\"domain\",\"key\":\"a\\\"b\\\\c\xEF\xBF\xBD\","
            "\"props\":{}}\n");
}

TEST(JsonlExportTest, CorruptPropsStopTheExportNamingTheRecord) {
  Status s;
  Export(ExportFormat::kJsonl, {{9, "ip", "1.1.1.1", "{not json"}}, {}, &s);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("node 9"), std::string::npos);
}

TEST(EscapingTest, Xml) {
  EXPECT_EQ(XmlEscape("<a & \"b\">'"), "&lt;a &amp; &quot;b&quot;&gt;&apos;");
  EXPECT_EQ(XmlEscape("x\ty\nz\r"), "x&#9;y&#10;z&#13;");
  EXPECT_EQ(XmlEscape(std::string("a\x01"
                                  "b",
                                  3)),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(XmlEscape("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(XmlEscape("bad\xC3"), "bad\xEF\xBF\xBD");
  EXPECT_EQ(XmlEscape("\xEF\xBF\xBF"), "\xEF\xBF\xBD");  // U+FFFF is not an XML character
}

TEST(EscapingTest, Utf8Sanitising) {
  EXPECT_EQ(SanitizeUtf8("ok \xE2\x82\xAC"), "ok \xE2\x82\xAC");
  EXPECT_EQ(SanitizeUtf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(SanitizeUtf8("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
}

TEST(EscapingTest, CypherStrings) {
  EXPECT_EQ(CypherString("8.8.8.8"), "'8.8.8.8'");
  EXPECT_EQ(CypherString("O'Brien"), "'O\\'Brien'");
  EXPECT_EQ(CypherString("C:\\path\\'x"), "'C:\\\\path\\\\\\'x'");
  EXPECT_EQ(CypherString("a\nb\rc\td"), "'a\\nb\\rc\\td'");
  EXPECT_EQ(CypherString(std::string("\x01\x7f", 2)), "'\\u0001\\u007f'");
  EXPECT_EQ(CypherString("say \"hi\""), "'say \"hi\"'");
}

TEST(EscapingTest, CypherNames) {
  EXPECT_EQ(CypherName("ip"), "ip");
  EXPECT_EQ(CypherName("ENRICHED_BY"), "ENRICHED_BY");
  EXPECT_EQ(CypherName("_x9"), "_x9");
  EXPECT_EQ(CypherName("my label"), "`my label`");
  EXPECT_EQ(CypherName("9lives"), "`9lives`");
  EXPECT_EQ(CypherName("a`b"), "`a``b`");
  EXPECT_EQ(CypherName("fetched-at"), "`fetched-at`");
}

TEST(CypherExportTest, NodesAndEdgesAsStatements) {
  EXPECT_EQ(Export(ExportFormat::kCypher, {Ip(), Enrichment()}, {Edge()}),
            "CREATE (:ip {_id: 1, key: '8.8.8.8'});\n"
            "CREATE (:enrichment {_id: 2, key: 'ipinfo:1', provider: 'ipinfo', kind: 'geo', "
            "status: 'ok', data: '{\"country_code\":\"US\",\"lat\":37.386}', http_status: 200, "
            "superseded: false, fetched_at: 1764339906123});\n"
            "MATCH (a {_id: 1}), (b {_id: 2}) CREATE (a)-[:ENRICHED_BY {_id: 7, "
            "provider: 'ipinfo'}]->(b);\n");
}

TEST(CypherExportTest, QuotesOddLabelsAndRenamesClashingProps) {
  StoredNode n{4, "odd label", "it's", R"({"key":"k","_id":5,"big":1e+20,"x y":[1,"a'b"]})"};
  EXPECT_EQ(Export(ExportFormat::kCypher, {n}, {}),
            "CREATE (:`odd label` {_id: 4, key: 'it\\'s', props_key: 'k', props__id: 5, "
            "big: 1e20, `x y`: '[1,\"a\\'b\"]'});\n");
}

TEST(GraphmlExportTest, StructureAndEscaping) {
  StoredNode odd{5, "ip", "<&>", R"({"provider":"a\"b"})"};
  const std::string xml = Export(ExportFormat::kGraphml, {Ip(), odd}, {Edge()});
  EXPECT_NE(xml.find("xmlns=\"http://graphml.graphdrawing.org/xmlns\""), std::string::npos);
  EXPECT_NE(xml.find("<graph id=\"enrichd\" edgedefault=\"directed\">"), std::string::npos);
  EXPECT_NE(xml.find("<node id=\"n1\"><data key=\"label\">ip</data><data key=\"key\">8.8.8.8"
                     "</data><data key=\"props\">{}</data></node>"),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<data key=\"key\">&lt;&amp;&gt;</data>"), std::string::npos);
  EXPECT_NE(xml.find("<data key=\"provider\">a&quot;b</data>"), std::string::npos);
  EXPECT_NE(xml.find("<edge id=\"e7\" source=\"n1\" target=\"n2\"><data key=\"edge_label\">"
                     "ENRICHED_BY</data>"),
            std::string::npos);
  EXPECT_TRUE(xml.ends_with("  </graph>\n</graphml>\n"));
}

// Runs a python3 snippet on a file; returns its exit status, or -1 if python3 is missing.
int RunPython(const std::string& script, const std::string& path) {
  if (std::system("command -v python3 >/dev/null 2>&1") != 0) return -1;
  const std::string cmd = "python3 -c '" + script + "' '" + path + "'";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

class GraphmlParseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("enrichd_graphml_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "g.graphml").string();
    StoredNode odd{5, "ip", "<&>'\"\x01\xff", R"({"kind":"geo","t":"tab\there"})"};
    StoredEdge e2{8, "ENRICHED_BY", 5, 2, "{}"};
    std::ofstream(path_) << Export(ExportFormat::kGraphml, {Ip(), Enrichment(), odd}, {Edge(), e2});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(GraphmlParseTest, WellFormedForAnXmlParser) {
  const int rc = RunPython(
      "import sys, xml.etree.ElementTree as ET\n"
      "ns = {\"g\": \"http://graphml.graphdrawing.org/xmlns\"}\n"
      "root = ET.parse(sys.argv[1]).getroot()\n"
      "nodes = root.findall(\"g:graph/g:node\", ns)\n"
      "edges = root.findall(\"g:graph/g:edge\", ns)\n"
      "assert [n.get(\"id\") for n in nodes] == [\"n1\", \"n2\", \"n5\"], nodes\n"
      "assert [(e.get(\"source\"), e.get(\"target\")) for e in edges] == "
      "[(\"n1\", \"n2\"), (\"n5\", \"n2\")]\n"
      "key = [d.text for d in nodes[2] if d.get(\"key\") == \"key\"][0]\n"
      "assert key == \"<&>\\x27\\\"\\ufffd\\ufffd\", repr(key)\n",
      path_);
  if (rc == -1) GTEST_SKIP() << "python3 is not installed";
  EXPECT_EQ(rc, 0);
}

TEST_F(GraphmlParseTest, NetworkxReadsIt) {
  if (std::system("python3 -c 'import networkx' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3-networkx is not installed (Debian package python3-networkx)";
  }
  const int rc = RunPython(
      "import sys, json, networkx as nx\n"
      "g = nx.read_graphml(sys.argv[1])\n"
      "assert g.is_directed()\n"
      "assert sorted(g.nodes) == [\"n1\", \"n2\", \"n5\"]\n"
      "assert g.nodes[\"n1\"][\"key\"] == \"8.8.8.8\"\n"
      "assert g.nodes[\"n2\"][\"provider\"] == \"ipinfo\"\n"
      "assert json.loads(g.nodes[\"n2\"][\"props\"])[\"data\"][\"country_code\"] == \"US\"\n"
      "assert json.loads(g.nodes[\"n5\"][\"props\"])[\"t\"] == \"tab\\there\"\n"
      "assert g.edges[\"n1\", \"n2\"][\"label\"] == \"ENRICHED_BY\"\n",
      path_);
  EXPECT_EQ(rc, 0);
}

TEST(ExportFormatTest, ParsesNames) {
  EXPECT_EQ(*ParseExportFormat("jsonl"), ExportFormat::kJsonl);
  EXPECT_EQ(*ParseExportFormat("graphml"), ExportFormat::kGraphml);
  EXPECT_EQ(*ParseExportFormat("cypher"), ExportFormat::kCypher);
  EXPECT_EQ(ParseExportFormat("csv").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace enrichd::cli
