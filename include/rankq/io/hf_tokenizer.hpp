// rankq/io/hf_tokenizer.hpp — reads a Hugging Face tokenizer.json of the SentencePiece-BPE kind that LLaMA and
// Mistral checkpoints ship (model.type BPE with byte_fallback, "▁" for spaces, a dummy "▁" prefix); refuses any
// other kind (byte-level BPE, Unigram, WordPiece...) naming what is unsupported. Rules: docs/io.md.
#pragma once

#include "rankq/detail/abi.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "rankq/error.hpp"
#include "rankq/io/file.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {

/// A SentencePiece-style BPE vocabulary: pieces by id (spaces spelled U+2581 "▁", as in the file), the merges
/// in priority order (first = applied first) as (left id, right id) whose concatenation is also a piece, and the
/// ids of <s>, </s>, <unk>.
struct HfBpeTokenizer {
  std::vector<std::string> pieces;
  std::vector<std::pair<int, int>> merges;
  int bos = -1, eos = -1, unk = -1;
};

namespace detail {

inline const std::string kSentencePieceSpace = "\xE2\x96\x81";

inline bool json_type_is(const nlohmann::json& j, const char* type) {
  return j.is_object() && j.contains("type") && j["type"] == type;
}

/// The normalizer/pre-tokenizer pair must be one of the two spellings of SentencePiece's rules ("replace every
/// space by ▁, prepend one ▁"): normalizer Sequence[Prepend "▁", Replace " " -> "▁"] with no pre-tokenizer (the
/// classic LlamaTokenizerFast export), or no normalizer and a Metaspace pre-tokenizer with replacement "▁",
/// prepend_scheme "first"/"always" (or add_prefix_space true) and split false (newer exports).
inline void check_sentencepiece_rules(const nlohmann::json& j, const std::string& source) {
  const nlohmann::json normalizer = j.value("normalizer", nlohmann::json());
  const nlohmann::json pre = j.value("pre_tokenizer", nlohmann::json());
  if (json_type_is(pre, "ByteLevel") ||
      (json_type_is(pre, "Sequence") && pre.contains("pretokenizers") && pre["pretokenizers"].dump().find("ByteLevel") != std::string::npos))
    throw format_error(source + ": a byte-level BPE tokenizer (GPT-2 / LLaMA-3 style) is not supported; only SentencePiece-style BPE");
  const auto unsupported = [&](const std::string& what) {
    throw format_error(source + ": " + what + " is not supported; only SentencePiece-style BPE (\"▁\" for spaces and a \"▁\" prefix)");
  };
  if (pre.is_null()) {
    const bool classic = json_type_is(normalizer, "Sequence") && normalizer.contains("normalizers") &&
                         normalizer["normalizers"].is_array() && normalizer["normalizers"].size() == 2 &&
                         json_type_is(normalizer["normalizers"][0], "Prepend") &&
                         normalizer["normalizers"][0].value("prepend", "") == kSentencePieceSpace &&
                         json_type_is(normalizer["normalizers"][1], "Replace") &&
                         normalizer["normalizers"][1].value("content", "") == kSentencePieceSpace &&
                         normalizer["normalizers"][1].contains("pattern") &&
                         normalizer["normalizers"][1]["pattern"] == nlohmann::json{{"String", " "}};
    if (!classic) unsupported("normalizer " + normalizer.dump());
    return;
  }
  if (!json_type_is(pre, "Metaspace")) unsupported("pre_tokenizer " + pre.dump());
  if (!normalizer.is_null()) unsupported("a normalizer together with the Metaspace pre_tokenizer (" + normalizer.dump() + ")");
  if (pre.value("replacement", "") != kSentencePieceSpace) unsupported("Metaspace replacement " + pre.value("replacement", "?"));
  const std::string scheme = pre.contains("prepend_scheme") && pre["prepend_scheme"].is_string()
                                 ? pre["prepend_scheme"].get<std::string>()
                                 : (pre.value("add_prefix_space", false) ? "always" : "never");
  if (scheme != "first" && scheme != "always") unsupported("Metaspace prepend_scheme '" + scheme + "' (no dummy prefix)");
  if (pre.value("split", false)) unsupported("Metaspace with split = true (words merged separately)");
}

}  // namespace detail

/// Parses a tokenizer.json held in `j`; `source` names it in errors. Requires model.type "BPE" with byte_fallback
/// true, a vocab of ids 0..n-1, merges as "left right" strings or [left, right] pairs whose parts and
/// concatenation are pieces, added tokens that are vocabulary pieces with their own ids, and the pieces <s>,
/// </s> and <unk>. Throws rankq::format_error naming the field and what is wrong or unsupported.
inline HfBpeTokenizer parse_hf_tokenizer(const nlohmann::json& j, const std::string& source) try {
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
    throw format_error(source + ": has no 'model' object");
  const nlohmann::json& model = j["model"];
  const std::string type = model.value("type", std::string("(none)"));
  if (type != "BPE") throw format_error(source + ": model.type '" + type + "' is not supported (only SentencePiece-style BPE)");
  if (!model.value("byte_fallback", false))
    throw format_error(source + ": model.byte_fallback is not true: only SentencePiece-style BPE with byte fallback is supported");
  detail::check_sentencepiece_rules(j, source);

  HfBpeTokenizer out;
  const auto vocab = model.find("vocab");
  if (vocab == model.end() || !vocab->is_object() || vocab->empty()) throw format_error(source + ": model.vocab is missing or empty");
  out.pieces.assign(vocab->size(), std::string());
  std::vector<bool> seen(vocab->size(), false);
  std::unordered_map<std::string, int> ids;
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<std::int64_t>() < 0 ||
        it.value().get<std::int64_t>() >= static_cast<std::int64_t>(vocab->size()))
      throw format_error(source + ": model.vocab['" + it.key() + "'] = " + it.value().dump() + " is not an id in [0, " +
                         std::to_string(vocab->size()) + ")");
    const auto id = static_cast<std::size_t>(it.value().get<std::int64_t>());
    if (seen[id]) throw format_error(source + ": model.vocab gives id " + std::to_string(id) + " to two pieces");
    seen[id] = true;
    out.pieces[id] = it.key();
    ids.emplace(it.key(), static_cast<int>(id));
  }
  const auto id_of = [&](const std::string& piece, const std::string& field) {
    const auto it = ids.find(piece);
    if (it == ids.end()) throw format_error(source + ": " + field + ": '" + piece + "' is not in model.vocab");
    return it->second;
  };

  const auto merges = model.find("merges");
  if (merges == model.end() || !merges->is_array()) throw format_error(source + ": model.merges is missing or not an array");
  out.merges.reserve(merges->size());
  for (std::size_t r = 0; r < merges->size(); ++r) {
    const nlohmann::json& m = (*merges)[r];
    const std::string field = "model.merges[" + std::to_string(r) + "]";
    std::string left, right;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const std::size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        throw format_error(source + ": " + field + " = '" + s + "' is not two pieces separated by one space");
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      throw format_error(source + ": " + field + " = " + m.dump() + " is not a merge");
    }
    const int l = id_of(left, field), rr = id_of(right, field);
    id_of(left + right, field + " (the merged piece)");
    out.merges.emplace_back(l, rr);
  }

  if (j.contains("added_tokens")) {
    if (!j["added_tokens"].is_array()) throw format_error(source + ": 'added_tokens' is not an array");
    for (const nlohmann::json& t : j["added_tokens"]) {
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() || !t.contains("content") || !t["content"].is_string())
        throw format_error(source + ": added_tokens has an entry without an integer 'id' and a string 'content': " + t.dump());
      const std::string& content = t["content"].get_ref<const std::string&>();
      const auto it = ids.find(content);
      if (it == ids.end() || it->second != t["id"].get<std::int64_t>())
        throw format_error(source + ": added token '" + content + "' (id " + t["id"].dump() +
                           ") is not that piece of model.vocab: added tokens beyond the BPE vocabulary are not supported");
    }
  }
  out.bos = id_of("<s>", "BOS token");
  out.eos = id_of("</s>", "EOS token");
  out.unk = id_of("<unk>", "unknown token");
  return out;
} catch (const nlohmann::json::exception& e) {  // a field of the wrong JSON type
  throw format_error(source + ": unexpected JSON structure: " + e.what());
}

/// Reads and parses a tokenizer.json file (see parse_hf_tokenizer). io_error if it cannot be read.
inline HfBpeTokenizer read_hf_tokenizer(const std::string& path) {
  const std::vector<std::uint8_t> bytes = read_file_bytes(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::exception& e) {
    throw format_error("tokenizer '" + path + "' is not valid JSON: " + e.what());
  }
  return parse_hf_tokenizer(j, "tokenizer '" + path + "'");
}

}  RANKQ_NAMESPACE_END  // namespace rankq::io
