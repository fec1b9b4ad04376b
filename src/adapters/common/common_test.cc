// Tests of the shared adapter helpers: SHA-256, JSON reading, redaction, status mapping.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "adapters/common/http_util.h"
#include "adapters/common/json_util.h"
#include "adapters/common/options.h"
#include "adapters/common/sha256.h"
#include "adapters/common/test_util.h"

namespace enrichd::adapters {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::Response;
using testing::TransportFailure;

TEST(Sha256Test, KnownVectorsAcrossPaddingBoundaries) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(std::string(55, 'a')),
            "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(Sha256Hex(std::string(56, 'a')),
            "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  EXPECT_EQ(Sha256Hex(std::string(64, 'a')),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  EXPECT_EQ(Sha256Hex(std::string(1000, 'a')),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
  EXPECT_EQ(ResponseDigest("abc"), "ba7816bf8f01cfea414140de5dae2223");
}

TEST(JsonUtilTest, ParseRejectsMalformedAndTruncated) {
  EXPECT_TRUE(ParseJson("{\"a\":1}").has_value());
  EXPECT_FALSE(ParseJson("{\"a\":1").has_value());
  EXPECT_FALSE(ParseJson("").has_value());
  EXPECT_FALSE(ParseJson("<html>").has_value());
  EXPECT_FALSE(ParseJson("{} trailing").has_value());
}

TEST(JsonUtilTest, DumpNeverThrowsOnInvalidUtf8) {
  Json j = std::string("bad \xff byte");
  EXPECT_NO_THROW(DumpJson(j));
}

TEST(JsonUtilTest, PointerResolvesObjectsArraysAndEscapes) {
  auto doc = *ParseJson(R"({"a":{"b":[10,{"c/d":"x","e~f":"y"}]}})");
  EXPECT_EQ(*JsonPointer::Parse("/a/b/0")->Resolve(doc), 10);
  EXPECT_EQ(*JsonPointer::Parse("/a/b/1/c~1d")->Resolve(doc), "x");
  EXPECT_EQ(*JsonPointer::Parse("/a/b/1/e~0f")->Resolve(doc), "y");
  EXPECT_EQ(JsonPointer::Parse("/a/b/2")->Resolve(doc), nullptr);
  EXPECT_EQ(JsonPointer::Parse("/a/b/x")->Resolve(doc), nullptr);
  EXPECT_EQ(JsonPointer::Parse("/a/b/01")->Resolve(doc), nullptr);
  EXPECT_EQ(JsonPointer::Parse("/a/b/0/deeper")->Resolve(doc), nullptr);
  EXPECT_EQ(JsonPointer::Parse("")->Resolve(doc), &doc);
  EXPECT_FALSE(JsonPointer::Parse("a/b").has_value());
  EXPECT_FALSE(JsonPointer::Parse("/a~2").has_value());
}

TEST(JsonUtilTest, AsnParsing) {
  EXPECT_EQ(ParseAsnValue(Json(15169)), 15169);
  EXPECT_EQ(ParseAsnValue(Json("AS15169")), 15169);
  EXPECT_EQ(ParseAsnValue(Json("as15169")), 15169);
  EXPECT_EQ(ParseAsnValue(Json("15169")), 15169);
  EXPECT_EQ(ParseAsnValue(Json("4294967295")), 4294967295LL);
  EXPECT_FALSE(ParseAsnValue(Json("4294967296")).has_value());
  EXPECT_FALSE(ParseAsnValue(Json(-1)).has_value());
  EXPECT_FALSE(ParseAsnValue(Json("AS")).has_value());
  EXPECT_FALSE(ParseAsnValue(Json("AS12x")).has_value());
  EXPECT_FALSE(ParseAsnValue(Json(1.5)).has_value());
  auto split = SplitAsPrefixed("AS15169 Google LLC");
  ASSERT_TRUE(split.has_value());
  EXPECT_EQ(split->asn, 15169);
  EXPECT_EQ(split->name, "Google LLC");
  EXPECT_FALSE(SplitAsPrefixed("Google LLC").has_value());
}

TEST(HttpUtilTest, StatusMapping) {
  EXPECT_FALSE(ClassifyHttpFailure(Response(200, "{}")).has_value());
  EXPECT_FALSE(ClassifyHttpFailure(Response(204, "")).has_value());
  auto rl = ClassifyHttpFailure(Response(429, "", {{"retry-after", "17"}}));
  EXPECT_EQ(rl->outcome, Outcome::kRateLimited);
  EXPECT_EQ(rl->retry_after, std::chrono::seconds(17));
  EXPECT_EQ(ClassifyHttpFailure(Response(401, ""))->outcome, Outcome::kAuth);
  EXPECT_EQ(ClassifyHttpFailure(Response(402, ""))->outcome, Outcome::kAuth);
  EXPECT_EQ(ClassifyHttpFailure(Response(403, ""))->outcome, Outcome::kAuth);
  EXPECT_EQ(ClassifyHttpFailure(Response(400, ""))->outcome, Outcome::kPermanent);
  EXPECT_EQ(ClassifyHttpFailure(Response(404, ""))->outcome, Outcome::kPermanent);
  EXPECT_EQ(ClassifyHttpFailure(Response(422, ""))->outcome, Outcome::kPermanent);
  EXPECT_EQ(ClassifyHttpFailure(Response(301, ""))->outcome, Outcome::kPermanent);
  EXPECT_EQ(ClassifyHttpFailure(Response(408, ""))->outcome, Outcome::kTransient);
  auto unavailable = ClassifyHttpFailure(Response(503, "", {{"retry-after", "5"}}));
  EXPECT_EQ(unavailable->outcome, Outcome::kTransient);
  EXPECT_EQ(unavailable->retry_after, std::chrono::seconds(5));
  EXPECT_EQ(unavailable->reason, "HTTP 503");
  EXPECT_EQ(ClassifyHttpFailure(TransportFailure(TransportError::kTimeout))->outcome,
            Outcome::kTransient);
  EXPECT_EQ(ClassifyHttpFailure(TransportFailure(TransportError::kConnect))->outcome,
            Outcome::kTransient);
  EXPECT_EQ(ClassifyHttpFailure(TransportFailure(TransportError::kReceive))->outcome,
            Outcome::kTransient);
  EXPECT_EQ(ClassifyHttpFailure(TransportFailure(TransportError::kCancelled))->outcome,
            Outcome::kCancelled);
  EXPECT_EQ(ClassifyHttpFailure(TransportFailure(TransportError::kResponseTooLarge))->outcome,
            Outcome::kPermanent);
}

TEST(HttpUtilTest, RetryAfterSimpleSecondsOnly) {
  EXPECT_EQ(RetryAfterSeconds(Response(429, "", {{"retry-after", "0"}})), std::chrono::seconds(0));
  EXPECT_FALSE(RetryAfterSeconds(Response(429, "", {{"retry-after", "-1"}})).has_value());
  EXPECT_FALSE(RetryAfterSeconds(Response(429, "", {{"retry-after", "abc"}})).has_value());
  EXPECT_FALSE(RetryAfterSeconds(Response(429, "", {{"retry-after", "1.5"}})).has_value());
  EXPECT_FALSE(
      RetryAfterSeconds(Response(429, "", {{"retry-after", "Wed, 21 Oct 2026 07:28:00 GMT"}}))
          .has_value());
  EXPECT_FALSE(RetryAfterSeconds(Response(429, "")).has_value());
}

TEST(HttpUtilTest, RedactUrl) {
  EXPECT_EQ(RedactUrl("https://ipinfo.io/8.8.8.8/json?token=s3cr3t", {}),
            "https://ipinfo.io/8.8.8.8/json?token=REDACTED");
  EXPECT_EQ(RedactUrl("http://u:pw@host:8/p?a=1&API_KEY=zz&b=2", {}),
            "http://host:8/p?a=1&API_KEY=REDACTED&b=2");
  EXPECT_EQ(RedactUrl("http://host/x/TOPSECRET/y", {"TOPSECRET"}), "http://host/x/[REDACTED]/y");
}

TEST(HttpUtilTest, AuthKinds) {
  AuthSpec bearer{AuthSpec::Kind::kBearer, "", "", "T0K"};
  HttpRequest a = NewRequest("GET", "http://h/x", std::chrono::seconds(3));
  ApplyAuth(a, bearer);
  EXPECT_EQ(testing::RequestHeader(a, "authorization"), "Bearer T0K");
  EXPECT_EQ(testing::RequestHeader(a, "user-agent"), "enrichd/0.1");
  EXPECT_EQ(a.timeout, std::chrono::seconds(3));

  AuthSpec basic{AuthSpec::Kind::kBasic, "", "acct", "lic"};
  HttpRequest b = NewRequest("GET", "http://h/x", std::chrono::seconds(3));
  ApplyAuth(b, basic);
  EXPECT_EQ(testing::RequestHeader(b, "Authorization"), "Basic YWNjdDpsaWM=");

  AuthSpec query{AuthSpec::Kind::kQueryParam, "", "", "a b&c"};
  HttpRequest q = NewRequest("GET", "http://h/x?f=1", std::chrono::seconds(3));
  ApplyAuth(q, query);
  EXPECT_EQ(q.url, "http://h/x?f=1&token=a%20b%26c");
  for (const auto& s : AuthSecrets(query)) {
    EXPECT_THAT(RedactUrl(q.url, AuthSecrets(query)), Not(HasSubstr(s)));
  }

  AuthSpec header{AuthSpec::Kind::kHeader, "X-Key", "", "hk"};
  HttpRequest h = NewRequest("GET", "http://h/x", std::chrono::seconds(3));
  ApplyAuth(h, header);
  EXPECT_EQ(testing::RequestHeader(h, "x-key"), "hk");
}

TEST(HttpUtilTest, PercentEncode) {
  EXPECT_EQ(PercentEncode("2001:db8::1"), "2001%3Adb8%3A%3A1");
  EXPECT_EQ(PercentEncode("a/b?c"), "a%2Fb%3Fc");
  EXPECT_EQ(PercentEncode("8.8.8.8"), "8.8.8.8");
}

TEST(HttpUtilTest, ScrubResultCoversEveryField) {
  EnrichmentResult r;
  r.reason = "bad token XYZZY";
  r.provenance.endpoint = "http://h/?q=XYZZY";
  r.data_json = R"({"echo":"XYZZY","XYZZY":1})";
  ScrubResult(r, {"XYZZY"});
  EXPECT_THAT(testing::AllText(r), Not(HasSubstr("XYZZY")));
  EXPECT_TRUE(ParseJson(r.data_json).has_value());
}

TEST(OptionsTest, UnknownOptionIsNamed) {
  auto s = CheckKnownOptions(Json{{"mode", "x"}, {"moed", 1}}, {"mode"});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("\"moed\""));
  EXPECT_TRUE(CheckKnownOptions(Json::object(), {}).ok());
}

}  // namespace
}  // namespace enrichd::adapters
