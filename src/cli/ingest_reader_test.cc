#include "cli/ingest_reader.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace enrichd::cli {
namespace {

// Only UpsertSourceNodes is real: a set of (label, key) plus a record of each batch.
class FakeStore final : public GraphStore {
 public:
  Status Migrate() override { return Status::Ok(); }
  Result<UpsertStats> UpsertSourceNodes(std::span<const SourceNode> nodes) override {
    if (fail_upserts) return UnavailableError("database is locked");
    batch_sizes.push_back(nodes.size());
    UpsertStats s;
    for (const auto& n : nodes) {
      if (keys.insert(n.label + "|" + n.key).second) {
        ++s.added;
      } else {
        ++s.existing;
      }
    }
    return s;
  }
  Result<int64_t> PlanDueTasks(std::span<const ProviderPlan>, WallTime) override { return No(); }
  Result<std::vector<ClaimedTask>> ClaimTasks(const ClaimRequest&) override { return No(); }
  Result<int64_t> CompleteTasks(std::span<const TaskCompletion>) override { return No(); }
  Result<int64_t> ScheduleRetries(std::span<const TaskRetry>) override { return No(); }
  Result<int64_t> FinishTasks(std::span<const TaskFinal>) override { return No(); }
  Result<int64_t> RenewLeases(std::string_view, std::span<const int64_t>, WallTime) override {
    return No();
  }
  Result<int64_t> ReleaseLeases(std::string_view) override { return No(); }
  Result<int64_t> ReclaimExpiredLeases(WallTime) override { return No(); }
  Result<int64_t> Requeue(const RequeueRequest&, WallTime) override { return No(); }
  Result<StoreCounts> Counts() override { return No(); }
  Result<std::optional<NodeView>> GetNode(std::string_view, std::string_view) override {
    return No();
  }
  Status Export(ExportSink&) override { return No(); }
  std::string Describe() const override { return "fake"; }

  std::set<std::string> keys;
  std::vector<std::size_t> batch_sizes;
  bool fail_upserts = false;

 private:
  static Status No() { return InternalError("not used by ingest"); }
};

struct IngestRun {
  Status status;
  IngestReport report;
};

IngestRun Ingest(const std::string& input, IngestOptions options, FakeStore& store) {
  std::istringstream in(input);
  IngestRun run;
  auto reader = MakeRecordReader(in, options);
  if (!reader.ok()) {
    run.status = reader.status();
    return run;
  }
  run.status = IngestRecords(**reader, store, options, &run.report);
  return run;
}

TEST(IngestLinesTest, CountsValidInvalidAndDuplicateLines) {
  FakeStore store;
  store.keys.insert("ip|9.9.9.9");  // already in the store
  const std::string input =
      "# a comment\n"
      "8.8.8.8\n"
      "\n"
      "   \n"
      "01.2.3.4\n"  // line 5: leading zero
      "8.8.8.8\n"   // duplicate within the file
      "9.9.9.9\n"   // already present
      "  # indented comment\n"
      "not-an-ip\n"   // line 9
      " 1.1.1.1 \n";  // surrounding spaces are trimmed
  IngestRun r = Ingest(input, {}, store);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.report.read, 6);
  EXPECT_EQ(r.report.added, 2);
  EXPECT_EQ(r.report.existing, 2);
  EXPECT_EQ(r.report.rejected, 2);
  ASSERT_EQ(r.report.rejected_examples.size(), 2u);
  EXPECT_EQ(r.report.rejected_examples[0].line, 5);
  EXPECT_EQ(r.report.rejected_examples[0].value, "01.2.3.4");
  EXPECT_NE(r.report.rejected_examples[0].reason.find("leading zero"), std::string::npos)
      << r.report.rejected_examples[0].reason;
  EXPECT_EQ(r.report.rejected_examples[1].line, 9);
  EXPECT_EQ(r.report.rejected_examples[1].value, "not-an-ip");
  EXPECT_EQ(store.keys, (std::set<std::string>{"ip|1.1.1.1", "ip|8.8.8.8", "ip|9.9.9.9"}));
}

TEST(IngestLinesTest, CanonicalisesIpv6AndCollapsesItsSpellings) {
  FakeStore store;
  IngestRun r =
      Ingest("2001:DB8::1\n2001:db8:0:0::1\n2001:0db8::0001\n::FFFF:8.8.8.8\n", {}, store);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.report.read, 4);
  EXPECT_EQ(r.report.added, 2);
  EXPECT_EQ(r.report.existing, 2);
  EXPECT_EQ(store.keys, (std::set<std::string>{"ip|2001:db8::1", "ip|::ffff:8.8.8.8"}));
}

TEST(IngestLinesTest, HandlesCrlfBomAndMissingFinalNewline) {
  FakeStore store;
  IngestRun r = Ingest(
      "\xEF\xBB\xBF"
      "1.2.3.4\r\n\r\n5.6.7.8\r\n9.10.11.12",
      {}, store);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.report.read, 3);
  EXPECT_EQ(r.report.rejected, 0) << r.report.rejected_examples[0].reason;
  EXPECT_EQ(store.keys, (std::set<std::string>{"ip|1.2.3.4", "ip|5.6.7.8", "ip|9.10.11.12"}));
}

TEST(IngestLinesTest, BomIsOnlyDroppedAtTheStart) {
  FakeStore store;
  IngestRun r = Ingest(
      "1.2.3.4\n\xEF\xBB\xBF"
      "5.6.7.8\n",
      {}, store);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.report.added, 1);
  EXPECT_EQ(r.report.rejected, 1);
  EXPECT_EQ(r.report.rejected_examples.at(0).line, 2);
}

TEST(IngestLinesTest, StoresInBatchesAndDeduplicatesAcrossThem) {
  FakeStore store;
  std::string input;
  for (int i = 1; i <= 10; ++i) input += "10.0.0." + std::to_string(i) + "\n";
  input += "10.0.0.1\n10.0.0.2\n";  // repeats of the first batch: the store says "existing"
  IngestOptions options;
  options.batch_size = 4;
  IngestRun r = Ingest(input, options, store);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(store.batch_sizes, (std::vector<std::size_t>{4, 4, 4}));
  EXPECT_EQ(r.report.added, 10);
  EXPECT_EQ(r.report.existing, 2);
}

TEST(IngestLinesTest, KeepsOnlyTheFirstExamplesButCountsAllRejections) {
  FakeStore store;
  std::string input;
  for (int i = 0; i < 8; ++i) input += "bad" + std::to_string(i) + "\n";
  IngestRun r = Ingest(input, {}, store);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.report.rejected, 8);
  ASSERT_EQ(r.report.rejected_examples.size(), 5u);
  EXPECT_EQ(r.report.rejected_examples[4].line, 5);
  EXPECT_EQ(r.report.valid(), 0);
  EXPECT_TRUE(store.batch_sizes.empty());
}

TEST(IngestLinesTest, OverlongLineIsRejectedAndReadingContinues) {
  FakeStore store;
  std::string input(kMaxLineBytes + 10, 'x');
  input += "\n8.8.4.4\n";
  IngestRun r = Ingest(input, {}, store);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.report.rejected, 1);
  EXPECT_EQ(r.report.added, 1);
  ASSERT_EQ(r.report.rejected_examples.size(), 1u);
  EXPECT_NE(r.report.rejected_examples[0].reason.find("longer than"), std::string::npos);
  EXPECT_LE(r.report.rejected_examples[0].value.size(), 210u);
}

TEST(IngestLinesTest, OtherLabelsKeepTheirTrimmedKey) {
  FakeStore store;
  IngestOptions options;
  options.label = "domain";
  IngestRun r = Ingest("Example.COM \n", options, store);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(store.keys, (std::set<std::string>{"domain|Example.COM"}));
}

TEST(IngestLinesTest, StoreFailureIsReturned) {
  FakeStore store;
  store.fail_upserts = true;
  IngestRun r = Ingest("8.8.8.8\n", {}, store);
  EXPECT_EQ(r.status.code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status.message().find("database is locked"), std::string::npos);
}

IngestOptions Csv(std::string column) {
  IngestOptions o;
  o.format = InputFormat::kCsv;
  o.column = std::move(column);
  return o;
}

TEST(IngestCsvTest, ColumnByHeaderNameWithQuotedFields) {
  FakeStore store;
  const std::string input =
      "seen,Source IP,note\r\n"
      "1,8.8.8.8,plain\r\n"
      "2,\"1.1.1.1\",\"with, comma\"\r\n"
      "3,\"2001:DB8::5\",\"a \"\"quoted\"\" word\nspanning lines\"\r\n"
      "4,1.2.3.04,bad\r\n"  // line 6
      "5\r\n";              // line 7: too few fields
  IngestRun r = Ingest(input, Csv("source ip"), store);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.report.read, 5);
  EXPECT_EQ(r.report.added, 3);
  EXPECT_EQ(r.report.rejected, 2);
  EXPECT_EQ(store.keys, (std::set<std::string>{"ip|1.1.1.1", "ip|2001:db8::5", "ip|8.8.8.8"}));
  ASSERT_EQ(r.report.rejected_examples.size(), 2u);
  EXPECT_EQ(r.report.rejected_examples[0].line, 6);
  EXPECT_EQ(r.report.rejected_examples[0].value, "1.2.3.04");
  EXPECT_EQ(r.report.rejected_examples[1].line, 7);
  EXPECT_NE(r.report.rejected_examples[1].reason.find("no column 2"), std::string::npos)
      << r.report.rejected_examples[1].reason;
}

TEST(IngestCsvTest, ColumnByIndexDetectsAHeaderRow) {
  FakeStore store;
  IngestRun with_header = Ingest("name,addr\na,8.8.8.8\nb,9.9.9.9\n", Csv("2"), store);
  ASSERT_TRUE(with_header.status.ok());
  EXPECT_EQ(with_header.report.read, 2);
  EXPECT_EQ(with_header.report.added, 2);
  EXPECT_EQ(with_header.report.rejected, 0);

  FakeStore store2;
  IngestRun without = Ingest("8.8.8.8,x\n9.9.9.9,y\n", Csv("1"), store2);
  ASSERT_TRUE(without.status.ok());
  EXPECT_EQ(without.report.read, 2);
  EXPECT_EQ(without.report.added, 2);
}

TEST(IngestCsvTest, MissingHeaderColumnIsAnErrorNamingIt) {
  FakeStore store;
  IngestRun r = Ingest("a,b\n1,2\n", Csv("ip"), store);
  EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status.message().find("'ip'"), std::string::npos);
  EXPECT_NE(r.status.message().find("a, b"), std::string::npos);
}

TEST(IngestCsvTest, UnterminatedQuoteIsRejected) {
  FakeStore store;
  IngestRun r = Ingest("ip\n8.8.8.8\n\"9.9.9.9\n", Csv("ip"), store);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.report.added, 1);
  EXPECT_EQ(r.report.rejected, 1);
  EXPECT_EQ(r.report.rejected_examples.at(0).line, 3);
  EXPECT_EQ(r.report.rejected_examples.at(0).reason, "unterminated quoted field");
}

TEST(IngestCsvTest, BadColumnOptionsAreInvalidArguments) {
  std::istringstream in("");
  EXPECT_EQ(MakeRecordReader(in, Csv("0")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeRecordReader(in, Csv("")).status().code(), StatusCode::kInvalidArgument);
}

TEST(IngestJsonlTest, ReadsAStringFieldAndExplainsRejections) {
  FakeStore store;
  IngestOptions o;
  o.format = InputFormat::kJsonl;
  o.field = "src";
  const std::string input =
      "{\"src\": \"8.8.8.8\", \"n\": 1}\n"
      "\n"
      "{\"src\": 12}\n"           // line 3
      "{\"dst\": \"1.1.1.1\"}\n"  // line 4
      "[1,2]\n"                   // line 5
      "{oops\n"                   // line 6
      "{\"src\":\"2001:db8::0:1\"}\r\n";
  IngestRun r = Ingest(input, o, store);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.report.read, 6);
  EXPECT_EQ(r.report.added, 2);
  EXPECT_EQ(r.report.rejected, 4);
  EXPECT_EQ(store.keys, (std::set<std::string>{"ip|2001:db8::1", "ip|8.8.8.8"}));
  const auto& ex = r.report.rejected_examples;
  ASSERT_EQ(ex.size(), 4u);
  EXPECT_EQ(ex[0].line, 3);
  EXPECT_EQ(ex[0].reason, "field 'src' is not a string (number)");
  EXPECT_EQ(ex[1].reason, "no field 'src'");
  EXPECT_EQ(ex[2].reason, "not a JSON object");
  EXPECT_EQ(ex[3].reason, "not valid JSON");
  EXPECT_EQ(ex[3].value, "{oops");
}

TEST(IngestJsonlTest, FieldDefaultsToTheLabel) {
  FakeStore store;
  IngestOptions o;
  o.format = InputFormat::kJsonl;
  IngestRun r = Ingest("{\"ip\":\"8.8.8.8\"}\n", o, store);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.report.added, 1);
}

TEST(IngestReportTest, JsonHasTheDocumentedShape) {
  IngestReport report;
  report.read = 4;
  report.added = 1;
  report.existing = 1;
  report.rejected = 2;
  report.rejected_examples = {{3, "01.2.3.4", "leading zero"}, {4, "bad\xff", "not an IP"}};
  auto j = nlohmann::json::parse(IngestReportJson(report));
  EXPECT_EQ(j, nlohmann::json::parse(R"({"read":4,"added":1,"existing":1,"rejected":2,
      "rejected_examples":[{"line":3,"value":"01.2.3.4","reason":"leading zero"},
                           {"line":4,"value":"bad\ufffd","reason":"not an IP"}]})"));
  const std::string text = IngestReportText(report);
  EXPECT_NE(text.find("read 4, added 1, already present 1, rejected 2"), std::string::npos);
  EXPECT_NE(text.find("line 3: \"01.2.3.4\": leading zero"), std::string::npos) << text;
}

TEST(IngestFormatTest, ParsesNames) {
  EXPECT_EQ(*ParseInputFormat("csv"), InputFormat::kCsv);
  EXPECT_EQ(*ParseInputFormat("jsonl"), InputFormat::kJsonl);
  EXPECT_EQ(*ParseInputFormat("lines"), InputFormat::kLines);
  EXPECT_EQ(ParseInputFormat("xml").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace enrichd::cli
