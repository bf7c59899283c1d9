// tests/test_llama_tokenizer.cpp — tokenizer: known encodings, llama2.c transcription, round trips, bad files.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "llama/paragraphs.hpp"
#include "llama/tokenizer.hpp"
#include "rankq/error.hpp"
#include "test_data.hpp"
#include "test_util.hpp"

namespace {

using rankq::llama::Tokenizer;

std::string data_file(const std::string& name) { return rankq_test::data_path(name); }

const Tokenizer& tok512() {
  static const Tokenizer t = Tokenizer::from_file(data_file("tok512.bin"), 512);
  return t;
}

const std::vector<std::string>& paragraphs() {
  static const std::vector<std::string> p = rankq::llama::load_paragraphs(data_file("tinystories-valid-head.txt"));
  return p;
}

/// A line-by-line transcription of llama2.c's run.c `encode` (bos = 1, eos = 0): exact lookups, and the merge
/// loop rescans every pair each round. Independent of Tokenizer's cached merge loop.
std::vector<int> llama2c_encode(const Tokenizer& t, const std::string& text) {
  std::map<std::string, int> sorted_vocab;
  for (int i = static_cast<int>(t.vocab_size()) - 1; i >= 0; --i) sorted_vocab[t.piece(i)] = i;
  auto str_lookup = [&](const std::string& s) {
    auto it = sorted_vocab.find(s);
    return it == sorted_vocab.end() ? -1 : it->second;
  };
  std::vector<int> tokens{1};
  if (!text.empty()) tokens.push_back(str_lookup(" "));
  std::string str_buffer;
  for (std::size_t c = 0; c < text.size(); ++c) {
    if ((text[c] & 0xC0) != 0x80) str_buffer.clear();
    str_buffer += text[c];
    const char next = c + 1 < text.size() ? text[c + 1] : '\0';
    if ((next & 0xC0) == 0x80 && str_buffer.size() < 4) continue;
    const int id = str_lookup(str_buffer);
    if (id != -1) {
      tokens.push_back(id);
    } else {
      for (char b : str_buffer) tokens.push_back(static_cast<unsigned char>(b) + 3);
    }
    str_buffer.clear();
  }
  while (true) {
    float best_score = -1e10f;
    int best_id = -1, best_idx = -1;
    for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
      const int id = str_lookup(t.piece(tokens[i]) + t.piece(tokens[i + 1]));
      if (id != -1 && t.score(id) > best_score) {
        best_score = t.score(id);
        best_id = id;
        best_idx = static_cast<int>(i);
      }
    }
    if (best_idx == -1) break;
    tokens[static_cast<std::size_t>(best_idx)] = best_id;
    tokens.erase(tokens.begin() + best_idx + 1);
  }
  return tokens;
}

/// Serialises a vocabulary in the tokenizer.bin format.
std::string tokenizer_bytes(const std::vector<std::string>& pieces, const std::vector<float>& scores,
                            std::int32_t max_len) {
  std::string out(reinterpret_cast<const char*>(&max_len), 4);
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    const auto len = static_cast<std::int32_t>(pieces[i].size());
    out.append(reinterpret_cast<const char*>(&scores[i]), 4);
    out.append(reinterpret_cast<const char*>(&len), 4);
    out += pieces[i];
  }
  return out;
}

/// <unk>, BOS, EOS, the 256 byte tokens, then `extra` pieces with their scores.
Tokenizer synthetic(const std::vector<std::pair<std::string, float>>& extra) {
  std::vector<std::string> pieces = {"<unk>", "\n<s>\n", "\n</s>\n"};
  std::vector<float> scores = {0, 0, 0};
  const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    pieces.push_back(std::string("<0x") + hex[b / 16] + hex[b % 16] + ">");
    scores.push_back(0);
  }
  for (const auto& [piece, score] : extra) {
    pieces.push_back(piece);
    scores.push_back(score);
  }
  return Tokenizer::from_bytes(tokenizer_bytes(pieces, scores, 8), "synthetic");
}

void expect_format_error(const std::string& bytes, const std::string& needle) {
  try {
    (void)Tokenizer::from_bytes(bytes, "bad.bin");
    ADD_FAILURE() << "expected rankq::format_error mentioning '" << needle << "'";
  } catch (const rankq::format_error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message was: " << e.what();
    EXPECT_NE(std::string(e.what()).find("bad.bin"), std::string::npos) << "message was: " << e.what();
  }
}

TEST(LlamaTokenizer, LoadsTok512) {
  RANKQ_REQUIRE_DATA("tok512.bin");
  const Tokenizer& t = tok512();
  EXPECT_EQ(t.vocab_size(), 512u);
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.piece(0), "<unk>");
  EXPECT_EQ(t.piece(1), "\n<s>\n");
  EXPECT_EQ(t.piece(3), "<0x00>");
  EXPECT_EQ(t.piece(258), "<0xFF>");
  EXPECT_EQ(t.piece(259), " t");
  EXPECT_EQ(t.find(" "), 410);
  EXPECT_FLOAT_EQ(t.score(260), -1.0f);
  test::expect_invalid([&] { (void)t.piece(512); }, "id");
}

TEST(LlamaTokenizer, KnownEncodingsTok512) {
  RANKQ_REQUIRE_DATA("tok512.bin");
  const Tokenizer& t = tok512();
  const std::vector<int> expected = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426};
  const std::vector<int> ids = t.encode("Once upon a time, there was a little girl named Lily.");
  EXPECT_EQ(ids, expected);
  std::string pieces;
  for (int id : ids) pieces += "|" + t.piece(id);
  EXPECT_EQ(pieces, "|\n<s>\n| Once| upon| a| time|,| there| was| a| little| g|ir|l| named| Lily|.");
  // Byte fallback: 🙂 is not a piece, so its 4 UTF-8 bytes become tokens byte + 3; "é" is a piece.
  EXPECT_EQ(t.encode("\xF0\x9F\x99\x82"), (std::vector<int>{1, 410, 0xF0 + 3, 0x9F + 3, 0x99 + 3, 0x82 + 3}));
  EXPECT_EQ(t.encode("\xC3\xA9"), (std::vector<int>{1, 410, 485}));
  EXPECT_EQ(t.encode(""), (std::vector<int>{1}));
  EXPECT_EQ(t.encode("", false), (std::vector<int>{}));
  EXPECT_EQ(t.encode("a", true, true).back(), 2);
}

// The examples of llama2.c's test.c (expected ids from Meta's SentencePiece) with the 32K LLaMA-2 vocabulary.
TEST(LlamaTokenizer, KnownEncodingsLlama2Vocabulary) {
  RANKQ_REQUIRE_DATA("tokenizer-llama2-32k.bin");
  const Tokenizer t = Tokenizer::from_file(data_file("tokenizer-llama2-32k.bin"), 32000);
  EXPECT_EQ(t.encode(""), (std::vector<int>{1}));
  EXPECT_EQ(t.encode("I believe the meaning of life is"), (std::vector<int>{1, 306, 4658, 278, 6593, 310, 2834, 338}));
  EXPECT_EQ(t.encode("Simply put, the theory of relativity states that "),
            (std::vector<int>{1, 3439, 17632, 1925, 29892, 278, 6368, 310, 14215, 537, 5922, 393, 29871}));
  EXPECT_EQ(
      t.encode("A brief message congratulating the team on the launch:\n\n        Hi everyone,\n\n        I just "),
      (std::vector<int>{1,     319, 11473, 2643, 378,  629,   271,   18099, 278, 3815, 373, 278, 6826,
                        29901, 13,  13,    4706, 6324, 14332, 29892, 13,    13,  4706, 306, 925, 29871}));
  EXPECT_EQ(t.encode("Translate English to French:\n\n        sea otter => loutre de mer\n        peppermint => menthe "
                     "poivr\xC3\xA9\x65\n        plush girafe => girafe peluche\n        cheese =>"),
            (std::vector<int>{1,    4103, 9632, 4223, 304,   5176,  29901, 13,   13,   4706, 7205, 4932, 357,
                              1149, 301,  449,  276,  316,   2778,  13,    4706, 1236, 407,  837,  524,  1149,
                              6042, 354,  772,  440,  29878, 1318,  13,    4706, 715,  1878, 330,  3055, 1725,
                              1149, 330,  3055, 1725, 4639,  28754, 13,    4706, 923,  968,  1149}));
}

TEST(LlamaTokenizer, MatchesLiteralLlama2cTranscription) {
  RANKQ_REQUIRE_DATA("tok512.bin", "tinystories-valid-head.txt");
  const Tokenizer& t = tok512();
  std::vector<std::string> texts(paragraphs().begin(), paragraphs().begin() + 60);
  texts.push_back("Caf\xC3\xA9 \xE2\x80\x99quoted\xE2\x80\x99 \xF0\x9F\x99\x82 emoji, \xE6\x97\xA5\xE6\x9C\xAC");
  texts.push_back("stray \x80\x80 continuation \xBF and truncated \xE2\x80 lead \xC3");
  texts.push_back("too many continuations: \xF0\x9F\x99\x82\x82\x82\x82");
  texts.push_back(std::string("embedded\0nul", 12));
  texts.push_back("  leading and trailing spaces  \n\n\n");
  std::mt19937 rng(7);
  for (int i = 0; i < 20; ++i) {
    std::string s(1 + rng() % 40, ' ');
    for (auto& c : s) c = static_cast<char>(rng() % 3 == 0 ? rng() % 256 : 'a' + rng() % 26);
    texts.push_back(s);
  }
  for (const auto& text : texts) EXPECT_EQ(t.encode(text), llama2c_encode(t, text)) << "text: " << text;
}

TEST(LlamaTokenizer, DecodeRoundTrips) {
  RANKQ_REQUIRE_DATA("tok512.bin", "tinystories-valid-head.txt");
  const Tokenizer& t = tok512();
  for (std::size_t i = 0; i < 300; ++i)
    EXPECT_EQ(t.decode(t.encode(paragraphs()[i])), paragraphs()[i]) << "paragraph " << i;
  std::mt19937 rng(11);
  for (int i = 0; i < 200; ++i) {
    std::string s(1 + rng() % 30, ' ');
    for (auto& c : s) c = static_cast<char>(rng() % 256);
    EXPECT_EQ(t.decode(t.encode(s)), s);
  }
  // llama2.c decode: the leading space after BOS is dropped, byte tokens become bytes.
  EXPECT_EQ(t.decode_piece(1, 403), "Once");
  EXPECT_EQ(t.decode_piece(403, 403), " Once");
  EXPECT_EQ(t.decode_piece(5, 0x41 + 3), "A");
  EXPECT_EQ(t.decode({1, 0xF0 + 3, 0x9F + 3, 0x99 + 3, 0x82 + 3, 2}), "\xF0\x9F\x99\x82");
}

TEST(LlamaTokenizer, MergesHighestScoreLeftmostFirst) {
  const Tokenizer t =
      synthetic({{" ", 0}, {"a", 0}, {"b", 0}, {"c", 0}, {"ab", -1}, {"bc", -0.5f}, {"aa", -2}, {" a", -9}});
  const int space = 259, a = 260, b = 261, c = 262, ab = 263, bc = 264, aa = 265, space_a = 266;
  EXPECT_EQ(t.encode("abc"), (std::vector<int>{1, space_a, bc}));  // "bc" (-0.5) beats "ab" (-1); " a" last
  EXPECT_EQ(t.encode("abc", false), (std::vector<int>{space_a, bc}));
  EXPECT_EQ(t.encode("aaa", false), (std::vector<int>{space, aa, a}));  // tie: the leftmost "aa" merges
  EXPECT_EQ(t.encode("ba", false), (std::vector<int>{space, b, a}));    // no "ba", and " b" is not a piece
  EXPECT_EQ(t.encode("cab", false), (std::vector<int>{space, c, ab}));
}

TEST(LlamaTokenizer, GgufStyleVocabularyConvertsSentencePieceSpaces) {
  RANKQ_REQUIRE_DATA("tok512.bin", "tinystories-valid-head.txt");
  const Tokenizer& ref = tok512();
  std::vector<std::string> pieces;
  std::vector<float> scores;
  for (int i = 0; i < 512; ++i) {
    std::string p = ref.piece(i);
    std::string converted;
    for (char c : p) converted += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
    pieces.push_back(i == 1 ? "<s>" : i == 2 ? "</s>" : converted);
    scores.push_back(ref.score(i));
  }
  const Tokenizer t = Tokenizer::from_vocabulary(pieces, scores, 1, 2);
  EXPECT_EQ(t.piece(259), " t");
  for (std::size_t i = 0; i < 50; ++i) EXPECT_EQ(t.encode(paragraphs()[i]), ref.encode(paragraphs()[i]));
}

TEST(LlamaTokenizer, RejectsBadFiles) {
  const std::string valid = tokenizer_bytes({"<unk>"}, {0.0f}, 7);
  expect_format_error("", "truncated");
  expect_format_error(std::string("\x07\x00", 2), "truncated");
  expect_format_error(tokenizer_bytes({}, {}, 0), "max_token_length = 0");
  expect_format_error(tokenizer_bytes({}, {}, -3), "max_token_length = -3");
  expect_format_error(tokenizer_bytes({"toolongpiece"}, {0.0f}, 7), "token 0 has length 12");
  std::string negative = valid;
  const std::int32_t minus_one = -1;
  std::memcpy(&negative[8], &minus_one, 4);
  expect_format_error(negative, "token 0 has length -1");
  expect_format_error(valid.substr(0, valid.size() - 1), "truncated inside the bytes of token 0");
  expect_format_error(valid + "ab", "truncated inside the score of token 1");
  expect_format_error(valid, "need at least 259");
  std::vector<std::string> pieces = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) pieces.push_back("<0x00>");
  expect_format_error(tokenizer_bytes(pieces, std::vector<float>(pieces.size(), 0.0f), 7),
                      "token 4 is '<0x00>', expected the byte token '<0x01>'");
  EXPECT_THROW((void)Tokenizer::from_file("/nonexistent/tok.bin"), rankq::io::io_error);
}

TEST(LlamaTokenizer, RejectsVocabularySizeMismatch) {
  RANKQ_REQUIRE_DATA("tok512.bin");
  try {
    (void)Tokenizer::from_file(data_file("tok512.bin"), 1000);
    ADD_FAILURE() << "expected a vocabulary size mismatch";
  } catch (const rankq::format_error& e) {
    EXPECT_NE(std::string(e.what()).find("512 tokens, the model expects 1000"), std::string::npos) << e.what();
  }
}

}  // namespace
