// Tests for rankq/io/hf_tokenizer.hpp (and llama::Tokenizer::from_hf): tok512 and the LLaMA-2 32K vocabulary
// written as tokenizer.json by our converter (tests/hf_writer.hpp, LlamaConverter's layout) give llama2.c's tokens
// on the TinyStories (and WikiText) text; merge-list semantics; every unsupported kind of tokenizer is refused.
#include "rankq/io/hf_tokenizer.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "hf_writer.hpp"
#include "llama/paragraphs.hpp"
#include "llama/tokenizer.hpp"
#include "test_data.hpp"
#include "test_util.hpp"

namespace {

using rankq::llama::Tokenizer;
const std::string kSpace = "\xE2\x96\x81";

using test::expect_format_error;

/// A minimal valid tokenizer.json: <unk> <s> </s>, the 256 byte pieces, then `extra` pieces and `merges`.
nlohmann::json minimal(const std::vector<std::string>& extra, const nlohmann::json& merges) {
  nlohmann::json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  static const char* kHex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) vocab[std::string("<0x") + kHex[b / 16] + kHex[b % 16] + ">"] = b + 3;
  for (std::size_t i = 0; i < extra.size(); ++i) vocab[extra[i]] = 259 + i;
  return {{"added_tokens", {{{"id", 0}, {"content", "<unk>"}}, {{"id", 1}, {"content", "<s>"}}, {{"id", 2}, {"content", "</s>"}}}},
          {"normalizer",
           {{"type", "Sequence"},
            {"normalizers",
             {{{"type", "Prepend"}, {"prepend", kSpace}}, {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}}}}}},
          {"pre_tokenizer", nullptr},
          {"model", {{"type", "BPE"}, {"byte_fallback", true}, {"vocab", vocab}, {"merges", merges}}}};
}

TEST(IoHfTokenizer, ParsesVocabularyMergesAndSpecials) {
  const auto hf = rankq::io::parse_hf_tokenizer(minimal({kSpace, "a", "b", kSpace + "a", "ab"}, {kSpace + " a", nlohmann::json{"a", "b"}}), "t");
  ASSERT_EQ(hf.pieces.size(), 264u);
  EXPECT_EQ(hf.pieces[262], kSpace + "a");
  EXPECT_EQ(hf.bos, 1);
  EXPECT_EQ(hf.eos, 2);
  EXPECT_EQ(hf.unk, 0);
  ASSERT_EQ(hf.merges.size(), 2u);
  EXPECT_EQ(hf.merges[0], (std::pair<int, int>{259, 260}));
  EXPECT_EQ(hf.merges[1], (std::pair<int, int>{260, 261}));
}

TEST(IoHfTokenizer, MergesFollowTheListNotScores) {
  // Pieces "ab" and "bc" both exist; the list ranks "b c" first, so "abc" -> a, bc. "▁a" is a piece but has no
  // merge rule: HF BPE never forms it (llama2.c's score-based encode would).
  const std::vector<std::string> extra = {kSpace, "a", "b", "c", "ab", "bc", kSpace + "a"};
  const auto hf = rankq::io::parse_hf_tokenizer(minimal(extra, {"b c", "a b"}), "t");
  const Tokenizer t = Tokenizer::from_hf(hf, "t");
  const int space = 259, a = 260, b = 261, bc = 264, ab = 263;
  EXPECT_EQ(t.encode("abc"), (std::vector<int>{1, space, a, bc}));
  EXPECT_EQ(t.encode("ab", false), (std::vector<int>{space, ab}));
  EXPECT_EQ(t.encode("ba", false), (std::vector<int>{space, b, a}));
  EXPECT_EQ(t.encode("a\xC3\xA9", false), (std::vector<int>{space, a, 0xC3 + 3, 0xA9 + 3}));  // byte fallback
  EXPECT_EQ(t.decode(t.encode("ab abc")), "ab abc");
  EXPECT_EQ(t.piece(space), " ");
  expect_format_error([&] { (void)Tokenizer::from_hf(hf, "t", 32000); }, "has 266 tokens, the model expects 32000");
}

TEST(IoHfTokenizer, MetaspacePreTokenizerIsAccepted) {
  nlohmann::json j = minimal({kSpace, "a"}, nlohmann::json::array());
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", kSpace}, {"prepend_scheme", "first"}, {"split", false}};
  EXPECT_EQ(rankq::io::parse_hf_tokenizer(j, "t").pieces.size(), 261u);
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", kSpace}, {"add_prefix_space", true}};
  EXPECT_EQ(rankq::io::parse_hf_tokenizer(j, "t").pieces.size(), 261u);
}

TEST(IoHfTokenizer, UnsupportedTokenizersAreRefusedByName) {
  const auto refused = [](const std::function<void(nlohmann::json&)>& edit, const std::string& needle) {
    nlohmann::json j = minimal({kSpace, "a", "b", "ab"}, {"a b"});
    edit(j);
    expect_format_error([&] { (void)rankq::io::parse_hf_tokenizer(j, "tokenizer.json"); }, needle);
  };
  refused([](auto& j) { j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}}; }, "byte-level BPE tokenizer");
  refused([](auto& j) {
    j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Split"}}, {{"type", "ByteLevel"}}}}};
  }, "byte-level BPE tokenizer");
  refused([](auto& j) { j["model"]["type"] = "Unigram"; }, "model.type 'Unigram' is not supported");
  refused([](auto& j) { j["model"]["type"] = "WordPiece"; }, "model.type 'WordPiece'");
  refused([](auto& j) { j["model"]["byte_fallback"] = false; }, "byte_fallback is not true");
  refused([](auto& j) { j["normalizer"] = {{"type", "NFKC"}}; }, "normalizer {\"type\":\"NFKC\"} is not supported");
  refused([](auto& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }, "pre_tokenizer");
  refused([](auto& j) {
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", kSpace}, {"prepend_scheme", "never"}};
  }, "prepend_scheme 'never'");
  refused([](auto& j) {
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", kSpace}, {"prepend_scheme", "first"}, {"split", true}};
  }, "split = true");
  refused([](auto& j) { j["model"]["merges"].push_back("a c"); }, "model.merges[1]: 'c' is not in model.vocab");
  refused([](auto& j) { j["model"]["merges"].push_back("b a"); }, "'ba' is not in model.vocab");
  refused([](auto& j) { j["model"]["merges"].push_back("ab"); }, "is not two pieces separated by one space");
  refused([](auto& j) { j["model"]["merges"].push_back(7); }, "model.merges[1] = 7 is not a merge");
  refused([](auto& j) { j["model"]["vocab"]["x"] = 5000; }, "model.vocab['x'] = 5000 is not an id");
  refused([](auto& j) { j["model"]["vocab"]["x"] = 4; }, "gives id 4 to two pieces");
  refused([](auto& j) { j["added_tokens"].push_back({{"id", 262}, {"content", "<|im_start|>"}}); },
          "added tokens beyond the BPE vocabulary are not supported");
  refused([](auto& j) { j.erase("model"); }, "has no 'model' object");
  refused([](auto& j) { j["model"]["byte_fallback"] = "yes"; }, "unexpected JSON structure");
  refused([](auto& j) {
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", 5}};
  }, "unexpected JSON structure");
  refused([](auto& j) {
    j["model"]["vocab"].erase("</s>");
    j["model"]["vocab"]["zz"] = 2;
    j["added_tokens"].erase(2);
  }, "EOS token: '</s>' is not in model.vocab");
  EXPECT_THROW((void)rankq::io::read_hf_tokenizer("/nonexistent/tokenizer.json"), rankq::io::io_error);
}

/// Converts the llama2.c vocabulary to tokenizer.json text, parses it back, builds the engine's tokenizer.
Tokenizer via_tokenizer_json(const Tokenizer& llama2c) {
  const std::string text = rankq_test::hf_tokenizer_json(llama2c).dump();
  const nlohmann::json parsed = nlohmann::json::parse(text);
  return Tokenizer::from_hf(rankq::io::parse_hf_tokenizer(parsed, "tokenizer.json"), "tokenizer.json", llama2c.vocab_size());
}

TEST(IoHfTokenizer, Tok512AsTokenizerJsonGivesTheSameTokensOnTinyStories) {
  RANKQ_REQUIRE_DATA("tok512.bin", "tinystories-valid-head.txt");
  const Tokenizer ref = Tokenizer::from_file(rankq_test::data_path("tok512.bin"), 512);
  const Tokenizer hf = via_tokenizer_json(ref);
  EXPECT_EQ(hf.bos_id(), 1);
  EXPECT_EQ(hf.eos_id(), 2);
  const auto paragraphs = rankq::llama::load_paragraphs(rankq_test::data_path("tinystories-valid-head.txt"));
  ASSERT_EQ(paragraphs.size(), 4300u);
  std::size_t tokens = 0;
  for (std::size_t i = 0; i < paragraphs.size(); ++i) {
    const std::vector<int> ids = hf.encode(paragraphs[i]);
    ASSERT_EQ(ids, ref.encode(paragraphs[i])) << "paragraph " << i;
    tokens += ids.size() - 1;
    if (i < 200) {
      EXPECT_EQ(hf.decode(ids), paragraphs[i]);
    }
  }
  EXPECT_EQ(tokens, 380662u);  // the data's reference token count (docs/data.md)
}

TEST(IoHfTokenizer, Llama2VocabularyAsTokenizerJsonGivesTheSameTokens) {
  RANKQ_REQUIRE_DATA("tokenizer-llama2-32k.bin", "tinystories-valid-head.txt", "wikitext-2-raw-v1.test.raw");
  const Tokenizer ref = Tokenizer::from_file(rankq_test::data_path("tokenizer-llama2-32k.bin"), 32000);
  const Tokenizer hf = via_tokenizer_json(ref);
  const auto stories = rankq::llama::load_paragraphs(rankq_test::data_path("tinystories-valid-head.txt"));
  for (std::size_t i = 0; i < 300; ++i) ASSERT_EQ(hf.encode(stories[i]), ref.encode(stories[i])) << "paragraph " << i;
  // WikiText-2 has one paragraph per CRLF-terminated line (no blank lines): the first 200 lines.
  std::ifstream wiki(rankq_test::data_path("wikitext-2-raw-v1.test.raw"), std::ios::binary);
  std::string line;
  for (int i = 0; i < 200 && std::getline(wiki, line); ++i) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    ASSERT_EQ(hf.encode(line), ref.encode(line)) << "wikitext line " << i;
  }
}

}  // namespace
