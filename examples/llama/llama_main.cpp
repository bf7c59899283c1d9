// rankq-llama — loads a llama2.c or GGUF LLaMA model (fp32) and generates greedily or measures paragraph perplexity.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "llama/generate.hpp"
#include "llama/model.hpp"
#include "llama/perplexity.hpp"
#include "llama/tokenizer.hpp"
#include "rankq/error.hpp"
#include "rankq/io/gguf.hpp"
#include "rankq/io/hf_checkpoint.hpp"
#include "rankq/io/hf_tokenizer.hpp"
#include "rankq/io/llama2c.hpp"

namespace {

const char* kUsage =
    "usage: rankq-llama <model.bin|model.gguf|HF-folder> [--tokenizer tok.bin|tokenizer.json] <command> [options]\n"
    "  The model format is detected from the file's magic (GGUF or llama2.c); a folder is a Hugging Face\n"
    "  LLaMA/Mistral checkpoint (config.json, safetensors, tokenizer.json). A GGUF model brings its own\n"
    "  vocabulary, a folder its tokenizer.json; a llama2.c model needs --tokenizer.\n"
    "commands:\n"
    "  info                                  print the configuration\n"
    "  generate [--prompt TEXT] [--steps N]  greedy decoding (llama2.c -t 0); N positions incl. the prompt,\n"
    "                                        default 256; stops at BOS/EOS\n"
    "  perplexity --text FILE [--begin B] [--end E] [--threads T] [--context C]\n"
    "                                        paragraph perplexity (split on blank lines, each paragraph\n"
    "                                        BOS + tokens, all tokens after BOS scored) over paragraphs [B, E)\n";

struct Arguments {
  std::string model_path, tokenizer_path, command;
  std::map<std::string, std::string> options;
};

Arguments parse_arguments(int argc, char** argv) {
  Arguments args;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") throw std::invalid_argument("help");
    if (arg.rfind("--", 0) == 0) {
      if (i + 1 >= argc) throw std::invalid_argument("option '" + arg + "' needs a value");
      args.options[arg.substr(2)] = argv[++i];
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 2) throw std::invalid_argument("expected a model path and a command");
  args.model_path = positional[0];
  args.command = positional[1];
  if (auto it = args.options.find("tokenizer"); it != args.options.end()) {
    args.tokenizer_path = it->second;
    args.options.erase(it);
  }
  return args;
}

std::size_t count_option(const Arguments& args, const std::string& name, std::size_t fallback) {
  auto it = args.options.find(name);
  if (it == args.options.end()) return fallback;
  std::size_t used = 0;
  unsigned long long value = 0;
  try {
    value = std::stoull(it->second, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != it->second.size() || it->second[0] == '-')
    throw std::invalid_argument("option '--" + name + "' = '" + it->second + "' is not a non-negative integer");
  return static_cast<std::size_t>(value);
}

void reject_unknown_options(const Arguments& args, const std::vector<std::string>& known) {
  for (const auto& option : args.options) {
    bool ok = false;
    for (const auto& k : known) ok = ok || option.first == k;
    if (!ok) throw std::invalid_argument("option '--" + option.first + "' is not valid for '" + args.command + "'");
  }
}

bool is_gguf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw rankq::format_error("cannot open model file '" + path + "'");
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::string(magic, 4) == "GGUF";
}

int run(const Arguments& args) {
  rankq::io::LlamaModel weights;
  std::unique_ptr<rankq::llama::Tokenizer> tokenizer;
  std::string hf_tokenizer = args.tokenizer_path.size() >= 5 &&
                                     args.tokenizer_path.compare(args.tokenizer_path.size() - 5, 5, ".json") == 0
                                 ? args.tokenizer_path
                                 : "";
  if (std::filesystem::is_directory(args.model_path)) {
    weights = rankq::io::read_hf_llama(args.model_path);
    if (args.tokenizer_path.empty()) hf_tokenizer = args.model_path + "/tokenizer.json";
  } else if (is_gguf(args.model_path)) {
    const auto file = rankq::io::read_gguf(args.model_path);
    weights = rankq::io::load_llama_gguf(file);
    if (args.tokenizer_path.empty()) {
      auto vocab = rankq::io::gguf_vocab(file);
      tokenizer = std::make_unique<rankq::llama::Tokenizer>(rankq::llama::Tokenizer::from_vocabulary(
          std::move(vocab.tokens), std::move(vocab.scores), vocab.bos, vocab.eos));
    }
  } else {
    weights = rankq::io::read_llama2c(args.model_path);
  }
  if (!hf_tokenizer.empty())
    tokenizer = std::make_unique<rankq::llama::Tokenizer>(rankq::llama::Tokenizer::from_hf(
        rankq::io::read_hf_tokenizer(hf_tokenizer), hf_tokenizer, static_cast<std::size_t>(weights.config.vocab_size)));
  if (!tokenizer) {
    if (args.tokenizer_path.empty())
      throw std::invalid_argument("a llama2.c model needs --tokenizer (e.g. tok512.bin)");
    tokenizer = std::make_unique<rankq::llama::Tokenizer>(
        rankq::llama::Tokenizer::from_file(args.tokenizer_path, static_cast<std::size_t>(weights.config.vocab_size)));
  }
  const rankq::llama::Model model(weights);
  const auto& c = model.config();

  if (args.command == "info") {
    reject_unknown_options(args, {});
    std::printf(
        "dim %d, hidden_dim %d, n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d, "
        "norm_eps %g, rope_theta %g; tokenizer: %zu tokens\n",
        c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len,
        static_cast<double>(c.norm_eps), static_cast<double>(c.rope_theta), tokenizer->vocab_size());
    return 0;
  }
  if (args.command == "generate") {
    reject_unknown_options(args, {"prompt", "steps"});
    const auto prompt_it = args.options.find("prompt");
    const std::string prompt = prompt_it == args.options.end() ? "" : prompt_it->second;
    const std::vector<int> prompt_tokens = tokenizer->encode(prompt, true, false);
    const std::vector<int> generated = rankq::llama::generate_greedy(
        model, prompt_tokens, count_option(args, "steps", 256), {tokenizer->bos_id(), tokenizer->eos_id()});
    std::vector<int> all = prompt_tokens;
    all.insert(all.end(), generated.begin(), generated.end());
    std::printf("%s\n", tokenizer->decode(all).c_str());
    return 0;
  }
  if (args.command == "perplexity") {
    reject_unknown_options(args, {"text", "begin", "end", "threads", "context"});
    const auto text_it = args.options.find("text");
    if (text_it == args.options.end()) throw std::invalid_argument("perplexity needs --text FILE");
    const std::vector<std::string> paragraphs = rankq::llama::load_paragraphs(text_it->second);
    rankq::llama::PerplexityOptions options;
    options.range.begin = count_option(args, "begin", 0);
    options.range.end = count_option(args, "end", rankq::llama::ParagraphRange::npos);
    options.threads = count_option(args, "threads", 2);
    options.context = count_option(args, "context", 0);
    const auto r = rankq::llama::evaluate_perplexity(model, *tokenizer, paragraphs, options);
    std::printf("paragraphs %zu (of %zu), tokens %zu, mean NLL %.6f, PPL %.5f, %.2f s, %.0f tokens/s\n", r.paragraphs,
                paragraphs.size(), r.tokens, r.mean_nll, r.perplexity, r.seconds, r.tokens_per_second);
    return 0;
  }
  throw std::invalid_argument("unknown command '" + args.command + "'");
}

}  // namespace

int main(int argc, char** argv) {
  Arguments args;
  try {
    args = parse_arguments(argc, argv);
  } catch (const std::invalid_argument& e) {
    if (std::string(e.what()) != "help") std::fprintf(stderr, "rankq-llama: %s\n", e.what());
    std::fputs(kUsage, stderr);
    return std::string(e.what()) == "help" ? 0 : 2;
  }
  try {
    return run(args);
  } catch (const rankq::invalid_argument& e) {
    std::fprintf(stderr, "rankq-llama: %s\n", e.what());
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "rankq-llama: %s\n%s", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rankq-llama: %s\n", e.what());
  }
  return 1;
}
