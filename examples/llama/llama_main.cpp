// rankq-llama — loads a llama2.c, GGUF or Hugging Face LLaMA model (fp32) or a rankq quantized model file (the
// output of rankq-quantize --out, run on its prepared layers without copying the packed weights) and generates
// greedily or measures paragraph perplexity.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cli/options.hpp"
#include "llama/generate.hpp"
#include "llama/model.hpp"
#include "llama/perplexity.hpp"
#include "llama/prepared_linear.hpp"
#include "llama/tokenizer.hpp"
#include "rankq/error.hpp"
#include "rankq/io/detect.hpp"
#include "rankq/io/gguf.hpp"
#include "rankq/io/hf_checkpoint.hpp"
#include "rankq/io/hf_tokenizer.hpp"
#include "rankq/io/llama2c.hpp"

namespace {

const char* kUsage =
    "usage: rankq-llama <model.bin|model.gguf|HF-folder|quantized.safetensors> [--tokenizer tok.bin|tokenizer.json]\n"
    "                   <command> [options]\n"
    "  The model format is detected from the file's magic (GGUF, safetensors or llama2.c); a folder is a Hugging\n"
    "  Face LLaMA/Mistral checkpoint (config.json, safetensors, tokenizer.json); a single safetensors file is a\n"
    "  rankq quantized model (the --out file of rankq-quantize), mapped and run on its packed layers. A GGUF model brings its\n"
    "  own vocabulary, a folder its tokenizer.json; llama2.c and quantized models need --tokenizer.\n"
    "commands:\n"
    "  info                                  print the configuration\n"
    "  generate [--prompt TEXT] [--steps N]  greedy decoding (llama2.c -t 0); N positions incl. the prompt,\n"
    "                                        default 256; stops at BOS/EOS\n"
    "  perplexity --text FILE [--begin B] [--end E] [--threads T] [--context C]\n"
    "                                        paragraph perplexity (split on blank lines, each paragraph\n"
    "                                        BOS + tokens, all tokens after BOS scored) over paragraphs [B, E)\n"
    "  speed [--prompt-tokens P] [--gen N]  prefill of P tokens (default 128) then N greedy decode steps (default\n"
    "                                        64), timed separately; prints tokens/s of each (one sequence, calling thread)\n"
    "  Numbers are whole non-negative integers; --threads is 1 to 4x the hardware threads; an empty range is\n"
    "  refused. Options are checked before the model is loaded.\n";

struct Arguments {
  std::string model_path, tokenizer_path, command;
  std::map<std::string, std::string> options;
  // The command's options, parsed and range-checked before anything is loaded.
  std::string prompt, text_path;
  std::size_t steps = 256, threads = 2, context = 0, prompt_tokens = 128, gen = 64;
  rankq::llama::ParagraphRange range;
};

void reject_unknown_options(const Arguments& args, const std::vector<std::string>& known) {
  for (const auto& option : args.options) {
    bool ok = false;
    for (const auto& k : known) ok = ok || option.first == k;
    if (!ok) throw std::invalid_argument("option '--" + option.first + "' is not valid for '" + args.command + "'");
  }
}

/// Parses the command line and every option of the command (strictly: whole-token integers in range, each option at
/// most once, only the command's options). Throws std::invalid_argument (usage errors) naming the option.
Arguments parse_arguments(int argc, char** argv) {
  Arguments args;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") throw std::invalid_argument("help");
    if (arg.rfind("--", 0) == 0) {
      if (i + 1 >= argc) throw std::invalid_argument("option '" + arg + "' needs a value");
      if (!args.options.emplace(arg.substr(2), argv[++i]).second) throw std::invalid_argument("option '" + arg + "' is given twice");
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
  const auto number = [&](const char* name, std::uint64_t lo, std::uint64_t hi, std::size_t fallback) {
    const auto it = args.options.find(name);
    return it == args.options.end() ? fallback
                                    : static_cast<std::size_t>(rankq::cli::parse_integer(it->second, std::string("--") + name, lo, hi));
  };
  const std::uint64_t positions = std::numeric_limits<int>::max();  // seq_len is an int
  if (args.command == "info") {
    reject_unknown_options(args, {});
  } else if (args.command == "generate") {
    reject_unknown_options(args, {"prompt", "steps"});
    if (auto it = args.options.find("prompt"); it != args.options.end()) args.prompt = it->second;
    args.steps = number("steps", 1, positions, 256);
  } else if (args.command == "speed") {
    reject_unknown_options(args, {"prompt-tokens", "gen"});
    args.prompt_tokens = number("prompt-tokens", 1, positions, 128);
    args.gen = number("gen", 1, positions, 64);
  } else if (args.command == "perplexity") {
    reject_unknown_options(args, {"text", "begin", "end", "threads", "context"});
    const auto text = args.options.find("text");
    if (text == args.options.end()) throw std::invalid_argument("perplexity needs --text FILE");
    args.text_path = text->second;
    args.range.begin = number("begin", 0, positions, 0);
    args.range.end = number("end", 1, positions, rankq::llama::ParagraphRange::npos);
    if (args.range.end != rankq::llama::ParagraphRange::npos && args.range.begin >= args.range.end)
      throw std::invalid_argument("--begin " + std::to_string(args.range.begin) + " --end " + std::to_string(args.range.end) +
                                  " is an empty range: a perplexity needs at least one paragraph");
    if (args.options.count("threads")) args.threads = rankq::cli::parse_threads(args.options.at("threads"), "--threads");
    args.context = number("context", 2, positions, 0);
  } else {
    throw std::invalid_argument("unknown command '" + args.command + "'");
  }
  return args;
}

int run(const Arguments& args) {
  // A folder is a Hugging Face checkpoint; a file is told apart by its magic bytes (io_error if unreadable).
  const bool hf_folder = std::filesystem::is_directory(args.model_path);
  const rankq::io::ModelFileKind kind =
      hf_folder ? rankq::io::ModelFileKind::safetensors : rankq::io::detect_model_file(args.model_path);
  const bool quantized = !hf_folder && kind == rankq::io::ModelFileKind::safetensors;  // rankq-quantize --out
  if (kind == rankq::io::ModelFileKind::llama2c && args.tokenizer_path.empty())
    throw std::invalid_argument("a llama2.c model needs --tokenizer (e.g. tok512.bin)");
  if (quantized && args.tokenizer_path.empty())
    throw std::invalid_argument("a rankq quantized model needs --tokenizer (the original model's tok.bin or tokenizer.json)");
  std::vector<std::string> paragraphs;  // the text first: a bad --text or range fails before the model is loaded
  if (args.command == "perplexity") {
    paragraphs = rankq::llama::load_paragraphs(args.text_path);
    (void)args.range.resolved(paragraphs.size(), "rankq-llama --begin/--end");
  }
  rankq::io::LlamaModel weights;
  rankq::llama::LinearFactory factory = rankq::llama::dense_linear_factory();
  std::string method = "fp32";
  std::unique_ptr<rankq::llama::Tokenizer> tokenizer;
  std::string hf_tokenizer = args.tokenizer_path.size() >= 5 &&
                                     args.tokenizer_path.compare(args.tokenizer_path.size() - 5, 5, ".json") == 0
                                 ? args.tokenizer_path
                                 : "";
  if (hf_folder) {
    weights = rankq::io::read_hf_llama(args.model_path);
    if (args.tokenizer_path.empty()) hf_tokenizer = args.model_path + "/tokenizer.json";
  } else if (kind == rankq::io::ModelFileKind::gguf) {
    const auto file = rankq::io::read_gguf(args.model_path);
    weights = rankq::io::load_llama_gguf(file);
    if (args.tokenizer_path.empty()) {
      auto vocab = rankq::io::gguf_vocab(file);
      tokenizer = std::make_unique<rankq::llama::Tokenizer>(rankq::llama::Tokenizer::from_vocabulary(
          std::move(vocab.tokens), std::move(vocab.scores), vocab.bos, vocab.eos));
    }
  } else if (quantized) {  // the packed layers view the mapped file; only the float tensors are read out
    auto q = rankq::llama::quantized_llama(rankq::io::read_quantized_model(args.model_path));
    weights = std::move(q.weights);
    factory = std::move(q.factory);
    method = std::move(q.method);
  } else {
    weights = rankq::io::read_llama2c(args.model_path);
  }
  if (!hf_tokenizer.empty())
    tokenizer = std::make_unique<rankq::llama::Tokenizer>(rankq::llama::Tokenizer::from_hf(
        rankq::io::read_hf_tokenizer(hf_tokenizer), hf_tokenizer, static_cast<std::size_t>(weights.config.vocab_size)));
  if (!tokenizer)
    tokenizer = std::make_unique<rankq::llama::Tokenizer>(
        rankq::llama::Tokenizer::from_file(args.tokenizer_path, static_cast<std::size_t>(weights.config.vocab_size)));
  const rankq::llama::Model model(weights, factory);
  weights = {};  // the model holds its own float tensors
  const auto& c = model.config();

  if (args.command == "info") {
    std::printf(
        "dim %d, hidden_dim %d, n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d, "
        "norm_eps %g, rope_theta %g; tokenizer: %zu tokens; weights: %s, %.3f bits/weight\n",
        c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len,
        static_cast<double>(c.norm_eps), static_cast<double>(c.rope_theta), tokenizer->vocab_size(), method.c_str(),
        model.projection_bits_per_weight());
    return 0;
  }
  if (args.command == "speed") {
    if (args.prompt_tokens + args.gen > model.max_positions())
      throw std::invalid_argument("--prompt-tokens + --gen = " + std::to_string(args.prompt_tokens + args.gen) +
                                  " exceeds seq_len = " + std::to_string(model.max_positions()));
    std::vector<int> prompt(args.prompt_tokens);  // BOS, then token ids cycling through the vocabulary (deterministic)
    prompt[0] = tokenizer->bos_id();
    for (std::size_t i = 1; i < prompt.size(); ++i) prompt[i] = static_cast<int>(3 + (i * 7919) % (model.vocab_size() - 3));
    rankq::llama::KvCache cache = model.make_cache(args.prompt_tokens + args.gen);
    std::vector<float> logits(prompt.size() * model.vocab_size());
    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    model.forward_chunk(prompt.data(), prompt.size(), 0, cache, logits.data());
    const double prefill = std::chrono::duration<double>(clock::now() - t0).count();
    int next = static_cast<int>(rankq::llama::argmax(logits.data() + (prompt.size() - 1) * model.vocab_size(), model.vocab_size()));
    t0 = clock::now();
    for (std::size_t i = 0; i < args.gen; ++i) {
      model.forward_chunk(&next, 1, args.prompt_tokens + i, cache, logits.data());
      next = static_cast<int>(rankq::llama::argmax(logits.data(), model.vocab_size()));
    }
    const double decode = std::chrono::duration<double>(clock::now() - t0).count();
    std::printf("prefill %zu tokens: %.3f s, %.2f tokens/s; decode %zu tokens: %.3f s, %.3f tokens/s\n", args.prompt_tokens, prefill,
                static_cast<double>(args.prompt_tokens) / prefill, args.gen, decode, static_cast<double>(args.gen) / decode);
    return 0;
  }
  if (args.command == "generate") {
    const std::vector<int> prompt_tokens = tokenizer->encode(args.prompt, true, false);
    const std::vector<int> generated =
        rankq::llama::generate_greedy(model, prompt_tokens, args.steps, {tokenizer->bos_id(), tokenizer->eos_id()});
    std::vector<int> all = prompt_tokens;
    all.insert(all.end(), generated.begin(), generated.end());
    std::printf("%s\n", tokenizer->decode(all).c_str());
    return 0;
  }
  rankq::llama::PerplexityOptions options;  // perplexity
  options.range = args.range;
  options.threads = args.threads;
  options.context = args.context;
  const auto r = rankq::llama::evaluate_perplexity(model, *tokenizer, paragraphs, options);
  std::printf("paragraphs %zu (of %zu), tokens %zu, mean NLL %.6f, PPL %.5f, %.2f s, %.0f tokens/s\n", r.paragraphs,
              paragraphs.size(), r.tokens, r.mean_nll, r.perplexity, r.seconds, r.tokens_per_second);
  return 0;
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
