// llama/tokenizer.hpp — the llama2.c BPE tokenizer (tokenizer.bin or GGUF vocabulary): llama2.c encode, decode.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "rankq/error.hpp"
#include "rankq/io/file.hpp"
#include "rankq/io/hf_tokenizer.hpp"

namespace rankq::llama {

/// A SentencePiece-style BPE vocabulary as exported by llama2.c: pieces use a plain space (not U+2581),
/// id 1 = BOS, id 2 = EOS, ids 3..258 are the byte tokens "<0x00>".."<0xFF>" (byte fallback id = byte + 3).
///
/// encode() reproduces llama2.c's `encode` token for token: optional BOS, the dummy-prefix " " token
/// (only for non-empty text), one token per UTF-8 character (a lead byte plus up to 3 continuation bytes)
/// or its bytes as byte tokens when the character is not a piece, then repeatedly merge the adjacent pair
/// whose concatenation is a piece with the highest score (the leftmost pair on ties; scores <= -1e10 never
/// merge). Differences from the C code, which only matter for inputs llama2.c cannot handle: text may
/// contain NUL bytes (encoded as "<0x00>"), and a vocabulary without a " " piece uses the byte token for
/// the dummy prefix. Duplicate pieces resolve to the lowest id.
/// All methods are const and thread-safe.
class Tokenizer {
 public:
  static constexpr int kByteTokenOffset = 3;

  /// Reads a llama2.c tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length,
  /// `length` bytes, until the end of the file. `expected_vocab_size` (0 = any) is checked against the
  /// number of records. Throws rankq::format_error naming the file and the problem (rankq::io::io_error if the
  /// file cannot be opened or read or is not a regular file).
  static Tokenizer from_file(const std::string& path, std::size_t expected_vocab_size = 0) {
    const std::vector<std::uint8_t> raw = rankq::io::read_file_bytes(path);  // io_error naming the path
    return from_bytes(std::string(raw.begin(), raw.end()), path, expected_vocab_size);
  }

  /// Parses the tokenizer.bin format from memory; `source` names the data in error messages.
  static Tokenizer from_bytes(const std::string& bytes, const std::string& source,
                              std::size_t expected_vocab_size = 0) {
    const std::string where = "rankq::llama::Tokenizer: tokenizer file '" + source + "'";
    std::size_t offset = 0;
    auto read_i32 = [&](const char* what) {
      if (bytes.size() - offset < 4)
        throw format_error(where + " is truncated: " + what + " at byte " + std::to_string(offset) + " is cut off");
      std::int32_t v;
      std::memcpy(&v, bytes.data() + offset, 4);
      offset += 4;
      return v;
    };
    const std::int32_t max_token_length = read_i32("max_token_length");
    if (max_token_length <= 0 || max_token_length > 4096)
      throw format_error(where + ": max_token_length = " + std::to_string(max_token_length) + " is not in [1, 4096]");
    std::vector<std::string> pieces;
    std::vector<float> scores;
    while (offset < bytes.size()) {
      const std::string record = "token " + std::to_string(pieces.size());
      float score;
      if (bytes.size() - offset < 4) throw format_error(where + " is truncated inside the score of " + record);
      std::memcpy(&score, bytes.data() + offset, 4);
      offset += 4;
      const std::int32_t length = read_i32(("the length of " + record).c_str());
      if (length < 0 || length > max_token_length)
        throw format_error(where + ": " + record + " has length " + std::to_string(length) +
                           ", not in [0, max_token_length = " + std::to_string(max_token_length) + "]");
      if (bytes.size() - offset < static_cast<std::size_t>(length))
        throw format_error(where + " is truncated inside the bytes of " + record);
      pieces.emplace_back(bytes.data() + offset, static_cast<std::size_t>(length));
      scores.push_back(score);
      offset += static_cast<std::size_t>(length);
    }
    if (expected_vocab_size != 0 && pieces.size() != expected_vocab_size)
      throw format_error(where + " has " + std::to_string(pieces.size()) + " tokens, the model expects " +
                         std::to_string(expected_vocab_size));
    return Tokenizer(std::move(pieces), std::move(scores), 1, 2, where);
  }

  /// Builds the tokenizer from a GGUF vocabulary (tokenizer.ggml.tokens / scores / bos / eos): SentencePiece's
  /// U+2581 "▁" is turned back into a space, as llama2.c's exporter does. A negative bos / eos (absent from
  /// the file) means llama2.c's fixed ids 1 / 2.
  static Tokenizer from_vocabulary(std::vector<std::string> tokens, std::vector<float> scores, int bos = 1,
                                   int eos = 2) {
    if (bos < 0) bos = 1;
    if (eos < 0) eos = 2;
    static const std::string kSentencePieceSpace = "\xE2\x96\x81";
    for (auto& piece : tokens) {
      std::string converted;
      for (std::size_t i = 0; i < piece.size();) {
        if (piece.compare(i, kSentencePieceSpace.size(), kSentencePieceSpace) == 0) {
          converted += ' ';
          i += kSentencePieceSpace.size();
        } else {
          converted += piece[i++];
        }
      }
      piece = std::move(converted);
    }
    return Tokenizer(std::move(tokens), std::move(scores), bos, eos, "rankq::llama::Tokenizer: vocabulary");
  }

  /// Builds the tokenizer from a Hugging Face tokenizer.json (rankq/io/hf_tokenizer.hpp): "▁" becomes a space,
  /// and merges follow the file's merge list — the adjacent pair with the earliest merge wins, the leftmost on
  /// ties, only listed pairs merge (HF BPE) — instead of piece scores. `expected_vocab_size` (0 = any) is checked.
  static Tokenizer from_hf(const io::HfBpeTokenizer& hf, const std::string& source, std::size_t expected_vocab_size = 0) {
    const std::string where = "rankq::llama::Tokenizer: '" + source + "'";
    if (expected_vocab_size != 0 && hf.pieces.size() != expected_vocab_size)
      throw format_error(where + " has " + std::to_string(hf.pieces.size()) + " tokens, the model expects " +
                         std::to_string(expected_vocab_size));
    Tokenizer t = from_vocabulary(hf.pieces, std::vector<float>(hf.pieces.size(), 0.f), hf.bos, hf.eos);
    t.merge_ranks_.reserve(hf.merges.size());
    for (std::size_t rank = 0; rank < hf.merges.size(); ++rank) {
      const auto [left, right] = hf.merges[rank];
      const int merged = t.find(t.piece(left) + t.piece(right));
      t.merge_ranks_.emplace(pair_key(left, right), MergeRule{static_cast<double>(rank), merged});  // first listing wins
    }
    return t;
  }

  std::size_t vocab_size() const { return pieces_.size(); }
  int bos_id() const { return bos_; }
  int eos_id() const { return eos_; }
  const std::string& piece(int id) const { return pieces_[checked_id(id, "llama::Tokenizer::piece")]; }
  float score(int id) const { return scores_[checked_id(id, "llama::Tokenizer::score")]; }
  /// The id of an exact piece, or -1.
  int find(const std::string& piece_text) const {
    auto it = lookup_.find(piece_text);
    return it == lookup_.end() ? -1 : it->second;
  }

  /// Token ids of `text` (raw bytes, normally UTF-8), optionally framed by BOS / EOS.
  std::vector<int> encode(const std::string& text, bool add_bos = true, bool add_eos = false) const {
    std::vector<int> tokens;
    tokens.reserve(text.size() + 3);
    if (add_bos) tokens.push_back(bos_);
    if (!text.empty()) tokens.push_back(dummy_prefix_);
    std::string character;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const auto byte = static_cast<unsigned char>(text[i]);
      if ((byte & 0xC0) != 0x80) character.clear();
      character += text[i];
      const bool next_continues = i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80;
      if (next_continues && character.size() < 4) continue;
      const int id = find(character);
      if (id != -1) {
        tokens.push_back(id);
      } else {
        for (char c : character) tokens.push_back(static_cast<unsigned char>(c) + kByteTokenOffset);
      }
      character.clear();
    }
    merge_pairs(tokens);
    if (add_eos) tokens.push_back(eos_);
    return tokens;
  }

  /// The text of `token` when it follows `previous` (llama2.c `decode`): the leading space of a piece right
  /// after BOS is dropped, "<0xXX>" byte tokens become that byte.
  std::string decode_piece(int previous, int token) const {
    const std::string& text = piece(token);
    if (text.size() == 6 && text.compare(0, 3, "<0x") == 0 && text[5] == '>' && is_hex(text[3]) && is_hex(text[4]))
      return std::string(1, static_cast<char>(hex_value(text[3]) * 16 + hex_value(text[4])));
    if (previous == bos_ && !text.empty() && text[0] == ' ') return text.substr(1);
    return text;
  }

  /// Concatenated text of a token sequence; BOS and EOS produce no text.
  std::string decode(const std::vector<int>& tokens) const {
    std::string out;
    int previous = -1;
    for (int token : tokens) {
      if (token != bos_ && token != eos_) out += decode_piece(previous, token);
      previous = token;
    }
    return out;
  }

 private:
  Tokenizer(std::vector<std::string> pieces, std::vector<float> scores, int bos, int eos, const std::string& where)
      : pieces_(std::move(pieces)), scores_(std::move(scores)), bos_(bos), eos_(eos) {
    if (pieces_.size() != scores_.size())
      throw format_error(where + ": " + std::to_string(pieces_.size()) + " pieces but " +
                         std::to_string(scores_.size()) + " scores");
    if (pieces_.size() < 256 + kByteTokenOffset)
      throw format_error(where + " has " + std::to_string(pieces_.size()) +
                         " tokens: need at least 259 (specials 0..2 and the 256 byte tokens)");
    const auto n = static_cast<int>(pieces_.size());
    if (bos_ < 0 || bos_ >= n || eos_ < 0 || eos_ >= n)
      throw format_error(where + ": BOS id " + std::to_string(bos_) + " or EOS id " + std::to_string(eos_) +
                         " is outside the vocabulary of " + std::to_string(n));
    static const char* kHex = "0123456789ABCDEF";
    for (std::size_t b = 0; b < 256; ++b) {
      const std::string expected = std::string("<0x") + kHex[b / 16] + kHex[b % 16] + ">";
      const std::string& actual = pieces_[b + kByteTokenOffset];
      if (actual != expected)
        throw format_error(where + ": token " + std::to_string(b + kByteTokenOffset) + " is '" + actual +
                           "', expected the byte token '" + expected + "'");
    }
    lookup_.reserve(pieces_.size());
    for (int id = 0; id < n; ++id) lookup_.emplace(pieces_[static_cast<std::size_t>(id)], id);  // keeps the lowest id
    dummy_prefix_ = find(" ");
    if (dummy_prefix_ == -1) dummy_prefix_ = ' ' + kByteTokenOffset;
  }

  std::size_t checked_id(int id, const char* what) const {
    if (id < 0 || static_cast<std::size_t>(id) >= pieces_.size())
      rankq::throw_invalid_argument(
          what, "id",
          "= " + std::to_string(id) + ": outside the vocabulary of " + std::to_string(pieces_.size()) + " tokens");
    return static_cast<std::size_t>(id);
  }

  struct MergeRule {
    double rank;  ///< lower merges first
    int id;       ///< the merged piece
  };
  static std::uint64_t pair_key(int left, int right) {
    return static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32 | static_cast<std::uint32_t>(right);
  }

  /// What the pair (left, right) merges into ({rank, id}; id -1 = no merge): with a merge list (from_hf) the
  /// listed rule, otherwise the concatenated piece ranked by minus its score (llama2.c).
  MergeRule merge_rule(int left, int right) const {
    if (!merge_ranks_.empty()) {
      const auto it = merge_ranks_.find(pair_key(left, right));
      return it == merge_ranks_.end() ? MergeRule{0.0, -1} : it->second;
    }
    const int id = find(pieces_[static_cast<std::size_t>(left)] + pieces_[static_cast<std::size_t>(right)]);
    return MergeRule{id == -1 ? 0.0 : -static_cast<double>(scores_[static_cast<std::size_t>(id)]), id};
  }

  /// llama2.c's merge loop. Each pair's merge candidate is cached and only the two pairs next to a merge are
  /// recomputed, so the choice (strictly highest score, leftmost on ties) is the C code's at O(n) per merge.
  /// With a merge list the lowest rank wins instead (leftmost on ties), which is HF BPE's order.
  void merge_pairs(std::vector<int>& tokens) const {
    constexpr double kNoMerge = 1e10;  // llama2.c: scores <= -1e10 never merge
    std::vector<MergeRule> pair(tokens.size(), MergeRule{0.0, -1});
    auto refresh = [&](std::size_t i) {
      pair[i] = i + 1 < tokens.size() ? merge_rule(tokens[i], tokens[i + 1]) : MergeRule{0.0, -1};
    };
    for (std::size_t i = 0; i < tokens.size(); ++i) refresh(i);
    while (tokens.size() > 1) {
      double best_rank = kNoMerge;
      std::size_t best = tokens.size();
      for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
        if (pair[i].id != -1 && pair[i].rank < best_rank) {
          best_rank = pair[i].rank;
          best = i;
        }
      }
      if (best == tokens.size()) break;
      tokens[best] = pair[best].id;
      tokens.erase(tokens.begin() + static_cast<std::ptrdiff_t>(best) + 1);
      pair.erase(pair.begin() + static_cast<std::ptrdiff_t>(best) + 1);
      refresh(best);
      if (best > 0) refresh(best - 1);
    }
  }

  static bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); }
  static int hex_value(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int> lookup_;
  std::unordered_map<std::uint64_t, MergeRule> merge_ranks_;  ///< from_hf: (left, right) -> rule; empty: use scores
  int bos_ = 1;
  int eos_ = 2;
  int dummy_prefix_ = -1;
};

}  // namespace rankq::llama
