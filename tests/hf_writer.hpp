// tests/hf_writer.hpp — a converter of ours from the engine's model / llama2.c vocabulary to a Hugging Face folder,
// written independently of the reader: config.json, model.safetensors or two shards + model.safetensors.index.json
// (F32 or BF16), Q/K rows permuted as transformers' convert_llama_weights_to_hf.py does, and a tokenizer.json as
// transformers' LlamaConverter writes it (SentencePiece vocabulary with "▁", merges ordered by merged-piece score).
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "llama/tokenizer.hpp"
#include "rankq/formats/half.hpp"
#include "rankq/io/llama_model.hpp"
#include "rankq/io/safetensors.hpp"

namespace rankq_test {

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

/// convert_llama_weights_to_hf.py's permute(w, n_heads, dim1, dim2):
///   w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)
/// i.e. out[h][j][i][:] = in[h][i][j][:] with h < n_heads, i < head/2, j < 2.
inline std::vector<float> hf_permute(const std::vector<float>& w, std::size_t n_heads, std::size_t dim1, std::size_t dim2) {
  const std::size_t half = dim1 / n_heads / 2;
  std::vector<float> out(w.size());
  for (std::size_t h = 0; h < n_heads; ++h)
    for (std::size_t i = 0; i < half; ++i)
      for (std::size_t j = 0; j < 2; ++j) {
        const std::size_t in_row = (h * half + i) * 2 + j;  // index into view [n_heads][half][2]
        const std::size_t out_row = (h * 2 + j) * half + i;  // index into view [n_heads][2][half]
        std::memcpy(&out[out_row * dim2], &w[in_row * dim2], dim2 * sizeof(float));
      }
  return out;
}

struct HfWriteOptions {
  rankq::io::DType dtype = rankq::io::DType::f32;  ///< f32, f16 or bf16 (round to nearest even)
  int shards = 1;                                  ///< 1 = model.safetensors, 2 = two shards + index
  bool write_lm_head = false;                      ///< store lm_head.weight (and tie_word_embeddings = false)
  std::string architecture = "LlamaForCausalLM";
};

inline rankq::io::RawTensor raw_tensor(const rankq::io::FloatTensor& t, rankq::io::DType dtype, const std::vector<float>& values) {
  rankq::io::RawTensor r;
  r.dtype = dtype;
  r.shape = t.shape;
  for (float v : values) {
    const std::uint32_t bits = dtype == rankq::io::DType::bf16  ? std::uint32_t{rankq::float_to_bf16(v)}
                               : dtype == rankq::io::DType::f16 ? std::uint32_t{rankq::float_to_half(v)}
                                                                : rankq::float_bits(v);
    for (std::size_t b = 0; b < rankq::io::dtype_size(dtype); ++b) r.bytes.push_back(static_cast<std::uint8_t>(bits >> (8 * b)));
  }
  return r;
}

/// Writes `m` as a Hugging Face LLaMA checkpoint into `dir` (created). Layers [0, n_layers/2] and the embedding go
/// to shard 1, the rest to shard 2.
inline void write_hf_checkpoint(const std::string& dir, const rankq::io::LlamaModel& m, const HfWriteOptions& o = {}) {
  std::filesystem::create_directories(dir);
  const rankq::io::LlamaConfig& c = m.config;
  nlohmann::json config = {{"architectures", {o.architecture}},
                           {"model_type", o.architecture == "MistralForCausalLM" ? "mistral" : "llama"},
                           {"hidden_size", c.dim},
                           {"intermediate_size", c.hidden_dim},
                           {"num_hidden_layers", c.n_layers},
                           {"num_attention_heads", c.n_heads},
                           {"num_key_value_heads", c.n_kv_heads},
                           {"vocab_size", c.vocab_size},
                           {"max_position_embeddings", c.seq_len},
                           {"rms_norm_eps", c.norm_eps},
                           {"rope_theta", c.rope_theta},
                           {"hidden_act", "silu"},
                           {"tie_word_embeddings", !o.write_lm_head},
                           {"torch_dtype", o.dtype == rankq::io::DType::bf16 ? "bfloat16" : "float32"},
                           {"bos_token_id", 1},
                           {"eos_token_id", 2}};
  write_text(dir + "/config.json", config.dump(2));

  const auto dim = static_cast<std::size_t>(c.dim);
  std::vector<std::map<std::string, rankq::io::RawTensor>> shards(static_cast<std::size_t>(o.shards));
  const auto put = [&](const std::string& hf, const std::string& gguf, int layer, std::size_t permute_heads) {
    const rankq::io::FloatTensor& t = m.at(gguf);
    std::vector<float> values = t.data;
    if (permute_heads) values = hf_permute(values, permute_heads, static_cast<std::size_t>(t.shape[0]), dim);
    const std::size_t shard = o.shards == 1 || layer <= c.n_layers / 2 ? 0 : 1;
    shards[shard].emplace(hf, raw_tensor(t, o.dtype, values));
  };
  put("model.embed_tokens.weight", "token_embd.weight", 0, 0);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".", h = "model.layers." + std::to_string(l) + ".";
    put(h + "input_layernorm.weight", b + "attn_norm.weight", l, 0);
    put(h + "self_attn.q_proj.weight", b + "attn_q.weight", l, static_cast<std::size_t>(c.n_heads));
    put(h + "self_attn.k_proj.weight", b + "attn_k.weight", l, static_cast<std::size_t>(c.n_kv_heads));
    put(h + "self_attn.v_proj.weight", b + "attn_v.weight", l, 0);
    put(h + "self_attn.o_proj.weight", b + "attn_output.weight", l, 0);
    put(h + "post_attention_layernorm.weight", b + "ffn_norm.weight", l, 0);
    put(h + "mlp.gate_proj.weight", b + "ffn_gate.weight", l, 0);
    put(h + "mlp.up_proj.weight", b + "ffn_up.weight", l, 0);
    put(h + "mlp.down_proj.weight", b + "ffn_down.weight", l, 0);
  }
  put("model.norm.weight", "output_norm.weight", c.n_layers, 0);
  if (o.write_lm_head) put("lm_head.weight", "output.weight", c.n_layers, 0);
  if (o.shards == 1) {
    rankq::io::write_safetensors(dir + "/model.safetensors", shards[0], {{"format", "pt"}});
    return;
  }
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  for (std::size_t s = 0; s < shards.size(); ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    rankq::io::write_safetensors(dir + "/" + name, shards[s], {{"format", "pt"}});
    for (const auto& entry : shards[s]) index["weight_map"][entry.first] = name;
  }
  write_text(dir + "/model.safetensors.index.json", index.dump(2));
}

/// tokenizer.json for a llama2.c vocabulary, as transformers' LlamaConverter writes it for the SentencePiece model
/// the vocabulary came from: pieces with "▁" for spaces, ids 0..2 <unk> <s> </s>, the byte pieces, and one merge
/// (left, right) per split of every normal piece into two pieces, ordered by the merged piece's score (highest
/// first; stable, so splits of one piece keep left-length order).
inline nlohmann::json hf_tokenizer_json(const rankq::llama::Tokenizer& t) {
  const std::string space = "\xE2\x96\x81";
  const auto spm = [&](const std::string& piece) {
    std::string out;
    for (char ch : piece) out += ch == ' ' ? space : std::string(1, ch);
    return out;
  };
  nlohmann::json vocab = nlohmann::json::object();
  std::vector<std::string> pieces;
  for (int id = 0; id < static_cast<int>(t.vocab_size()); ++id) {
    const std::string p = id == 0 ? "<unk>" : id == 1 ? "<s>" : id == 2 ? "</s>" : spm(t.piece(id));
    pieces.push_back(p);
    if (!vocab.contains(p)) vocab[p] = id;
  }
  struct Merge {
    std::string left, right;
    float score;
  };
  std::vector<Merge> merges;
  std::vector<int> order;
  for (int id = 259; id < static_cast<int>(t.vocab_size()); ++id) order.push_back(id);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return t.score(a) > t.score(b); });
  for (int id : order) {
    const std::string& p = pieces[static_cast<std::size_t>(id)];
    for (std::size_t k = 1; k < p.size(); ++k) {
      const std::string l = p.substr(0, k), r = p.substr(k);
      if (vocab.contains(l) && vocab.contains(r) && vocab[l].get<int>() >= 3 && vocab[r].get<int>() >= 3)
        merges.push_back({l, r, t.score(id)});
    }
  }
  nlohmann::json merge_list = nlohmann::json::array();
  for (const Merge& m : merges) merge_list.push_back(m.left + " " + m.right);
  const auto added = [](int id, const char* content) {
    return nlohmann::json{{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false},
                          {"rstrip", false}, {"normalized", false}, {"special", true}};
  };
  return nlohmann::json{
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", {added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")}},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "Prepend"}, {"prepend", space}},
          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", space}}}}}},
      {"pre_tokenizer", nullptr},
      {"post_processor", nullptr},
      {"decoder", nullptr},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", "<unk>"},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", true},
        {"byte_fallback", true},
        {"vocab", vocab},
        {"merges", merge_list}}}};
}

}  // namespace rankq_test
