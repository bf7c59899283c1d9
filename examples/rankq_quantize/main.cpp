// rankq-quantize — quantizes a model (or the built-in synthetic layer) with rankq's methods and prints a table.
// Without --model: every format on a deterministic synthetic layer (bits/weight, weight error, output error).
// With --model: calibrates, quantizes every projection, and reports perplexity. Usage: rankq-quantize --help
#include <rankq/rankq.hpp>

#include <rankq/io/file.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <set>
#include <string>
#include <vector>

#include "cli/options.hpp"
#include "rankq_quantize/gptq_rows.hpp"
#include "rankq_quantize/cli_checks.hpp"
#include "rankq_quantize/lcq_rows.hpp"
#include "rankq_quantize/lqer_rows.hpp"
#include "rankq_quantize/model_run.hpp"
#include "rankq_quantize/synthetic.hpp"
#include "rankq_quantize/table.hpp"

namespace {

using rankq::example::MethodSpec;

struct Args {
  std::string json_path;
  std::size_t N = 512, K = 1024;
  rankq::example::ModelRunOptions run;
  std::vector<std::string> methods{"fp32", "rtn"};
  std::vector<unsigned> bits{4};
  std::vector<std::size_t> ranks;      ///< lqer/l2qer (and lcq unless --lcq-rank); empty = the method's default
  std::vector<unsigned> lcq_bits;      ///< empty = --bits
  std::vector<std::size_t> lcq_ranks;  ///< empty = --rank, or 2
  bool lcq_double_quant = false;       ///< lcq: 8-bit S and B (double quantization)
  std::size_t group = 32;
  rankq::example::GptqChoice gptq;  ///< --gptq (modifier) / --damp / --act-order / --gptq-block / --gptq-clip
  std::set<std::string> given;      ///< the options on the command line (each at most once)
};

void usage() {
  std::puts(
      "usage: rankq-quantize [options]\n"
      "Without --model, quantizes the built-in deterministic synthetic layer (heavy-tailed weights, activations\n"
      "with outlier channels) with every format and prints bits/weight, weight error and output error\n"
      "(uniform/MXINT formats; plain MXINT vs LQER vs L2QER at W4A8 and W3A8, k = 4, 8, 16, 32).\n"
      "  --shape NxK            synthetic layer shape (default 512x1024)\n"
      "With --model (llama2.c .bin, GGUF .gguf or a Hugging Face LLaMA/Mistral folder), quantizes every projection\n"
      "and measures perplexity:\n"
      "  --model PATH           checkpoint file, or a folder with config.json + safetensors (single or sharded)\n"
      "  --tokenizer PATH       llama2.c tokenizer or a tokenizer.json (default for GGUF: the file's vocabulary;\n"
      "                         for a folder: its tokenizer.json)\n"      "  --calib PATH           calibration text (default: --eval); paragraphs split on blank lines\n"
      "  --calib-range A:B      calibration paragraphs [A, B) (default 0:256); the fp32 model runs on them once\n"
      "                         and every method that needs statistics (l2qer, lcq) reuses them\n"
      "  --eval PATH            evaluation text\n"
      "  --eval-range A:B       evaluation paragraphs [A, B) (default 256:end; B may be empty)\n"
      "  --method LIST          comma list (default fp32,rtn):\n"
      "                           fp32   float weights and activations (the baseline; always run first)\n"
      "                           rtn    uniform asymmetric RTN, --group, f16 scales; int8 per-token activations\n"
      "                           mxint  MXINT weights (blocks of 16); MXINT8 activations (blocks of 16)\n"
      "                           lqer   MXINT weights + rank-k A_k B_k (SVD of W - Q(W)), factors MXINT8;\n"
      "                                  MXINT8 activations (the L2QER paper's W4A8 setup)\n"
      "                           l2qer  as lqer, SVD of diag(s)(W - Q(W)) with s from calibration\n"
      "                           lcq    rank-k codebooks, --group, fitted with D = E[x^2] from calibration;\n"
      "                                  int8 per-token activations, codebook kernels\n"
      "  --bits LIST            weight bits, comma list (default 4): rtn/mxint 2,3,4,8; lqer/l2qer 3,4\n"
      "  --rank LIST            lqer/l2qer: k of A_k B_k (default 16); lcq: codebook rank 1..8 (default 2)\n"
      "  --lcq-bits LIST        lcq's index bits 2,3,4 (default: --bits)\n"
      "  --lcq-rank LIST        lcq's ranks (default: --rank, else 2)\n"
      "  --lcq-double-quant     lcq: store S and B in 8 bits (double quantization, refitted; default f32)\n"
      "  --group G              rtn/lcq group size: rtn 16, 32, 64, 128; lcq 32, 64, 128; 0 = whole row (default 32)\n"
      "  --threads N            evaluation, LCQ fitting and GPTQ threads, 1 to 4x the hardware threads (default 2)\n"
      "GPTQ (docs/gptq.md; H = X^T X / n of each projection's fp32 calibration inputs, 8 K^2 bytes per projection):\n"
      "  --method gptq          GPTQ onto rtn's grid (uniform asymmetric, --group, f16 scales)\n"
      "  --gptq                 GPTQ in front of every listed method: rtn, mxint, lqer, l2qer (L2QER fitted to the\n"
      "                         GPTQ residual), lcq (codebook passes alternating with refits)\n"
      "  --damp X               dampening lambda: H + lambda mean(diag H) I (default 0.01)\n"
      "  --act-order            process columns by decreasing diag(H) (groups stay on the stored layout)\n"
      "  --gptq-block B         lazy-batch width in columns, 1 to 65536 (default 128)\n"
      "  --gptq-clip N          GPTQ onto rtn's grid: each group's range is shrunk by the best of N factors in\n"
      "                         [0.5, 1) or kept (least H-weighted rounding error); 0 = min/max; 0 to 1000 (default 20)\n"
      "  --out FILE             write the quantized model (one quantized method) as a safetensors file; the run\n"
      "                         then works layer by layer (bounded memory: one block in float at a time; the same\n"
      "                         file and perplexities; docs/engine.md) and prints its peak RSS\n"
      "Both modes:\n"
      "  --json FILE            also write the table as JSON\n"
      "Every option is checked before any work starts: numbers are whole non-negative integers in range, an option\n"
      "the run would ignore is refused (e.g. --bits without --model, --rank without lqer/l2qer/lcq), and --out/--json\n"
      "must name a new or regular file in a writable directory, none of the inputs. Ctrl-C removes a partly written\n"
      "output; an existing file is only replaced once the new one is complete.");
}

/// GPTQ's options (kept apart from parse() so that the option table stays easy to read). Returns false if `arg`
/// is not one of them.
template <typename Value>
bool parse_gptq_option(const std::string& arg, Value&& value, rankq::example::GptqChoice& g) {
  if (arg == "--gptq") {
    g.enabled = true;
  } else if (arg == "--act-order") {
    g.act_order = true;
  } else if (arg == "--gptq-block") {
    g.block = static_cast<std::size_t>(rankq::cli::parse_integer(value(), arg, 1, 1u << 16));
  } else if (arg == "--gptq-clip") {
    g.clip_steps = static_cast<unsigned>(rankq::cli::parse_integer(value(), arg, 0, rankq::kGptqMaxClipSteps));
  } else if (arg == "--damp") {
    const std::string v = value();
    std::size_t pos = 0;
    double d = -1;
    try {
      d = std::stod(v, &pos);
    } catch (const std::exception&) {
      pos = 0;
    }
    if (pos != v.size() || v.empty() || !(d >= 0.0) || !std::isfinite(d))
      rankq::cli::option_error(arg, "'" + v + "' is not a finite number >= 0");
    g.damp = d;
  } else {
    return false;
  }
  return true;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage();
      std::exit(0);
    }
    if (!a.given.insert(arg).second) rankq::cli::option_error(arg, "is given twice");
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) rankq::cli::option_error(arg, "needs a value");
      return argv[++i];
    };
    auto counts = [&](std::uint64_t lo, std::uint64_t hi) { return rankq::cli::parse_integer_list(value(), arg, lo, hi); };
    if (arg == "--json") {
      a.json_path = value();
    } else if (arg == "--shape") {
      const std::string v = value();
      const auto x = v.find('x');
      if (x == std::string::npos) rankq::cli::option_error(arg, "expects NxK, got '" + v + "'");
      a.N = rankq::cli::parse_integer(v.substr(0, x), arg, 1, 1u << 16);
      a.K = rankq::cli::parse_integer(v.substr(x + 1), arg, 1, 1u << 16);
    } else if (arg == "--model") {
      a.run.model_path = value();
    } else if (arg == "--tokenizer") {
      a.run.tokenizer_path = value();
    } else if (arg == "--calib") {
      a.run.calib_path = value();
    } else if (arg == "--eval") {
      a.run.eval_path = value();
    } else if (arg == "--calib-range") {
      a.run.calib_range = rankq::cli::parse_range(value(), arg);
    } else if (arg == "--eval-range") {
      a.run.eval_range = rankq::cli::parse_range(value(), arg);
    } else if (arg == "--method") {
      a.methods = rankq::cli::split_list(value(), arg);
    } else if (arg == "--bits") {
      a.bits.clear();
      for (auto b : counts(2, 8)) a.bits.push_back(static_cast<unsigned>(b));
    } else if (arg == "--rank") {
      a.ranks.clear();
      for (auto r : counts(1, 1u << 20)) a.ranks.push_back(static_cast<std::size_t>(r));
    } else if (arg == "--lcq-bits") {
      a.lcq_bits.clear();
      for (auto b : counts(2, 4)) a.lcq_bits.push_back(static_cast<unsigned>(b));
    } else if (arg == "--lcq-rank") {
      a.lcq_ranks.clear();
      for (auto r : counts(1, rankq::kMaxCodebookRank)) a.lcq_ranks.push_back(static_cast<std::size_t>(r));
    } else if (arg == "--lcq-double-quant") {
      a.lcq_double_quant = true;
    } else if (arg == "--group") {
      a.group = static_cast<std::size_t>(rankq::cli::parse_integer(value(), arg, 0, 128));
    } else if (arg == "--out") {
      a.run.out_path = value();
    } else if (arg == "--threads") {
      a.run.threads = rankq::cli::parse_threads(value(), arg);
    } else if (parse_gptq_option(arg, value, a.gptq)) {
      // --gptq, --damp, --act-order, --gptq-block, --gptq-clip
    } else {
      throw rankq::invalid_argument("unknown option '" + arg + "' (see --help)");
    }
  }
  return a;
}

/// Without --model only --shape and --json mean something: every model option is refused, never ignored.
void validate_synthetic(const Args& a) {
  for (const char* opt : {"--tokenizer", "--calib", "--eval", "--calib-range", "--eval-range", "--method", "--bits", "--rank",
                          "--lcq-bits", "--lcq-rank", "--lcq-double-quant", "--group", "--threads", "--out", "--gptq",
                          "--damp", "--act-order", "--gptq-block", "--gptq-clip"})
    if (a.given.count(opt))
      rankq::cli::option_error(opt, "needs --model (without --model, the synthetic layer is quantized with every format)");
  if (!a.json_path.empty()) rankq::io::check_output_path("--json", a.json_path);
}

/// Turns --method gptq into rtn with GPTQ, applies --gptq to every quantized method, and marks the GPTQ options as
/// used when some method runs GPTQ (otherwise build_method_specs refuses them as ignored).
void apply_gptq(std::vector<MethodSpec>& specs, const Args& args, std::set<std::string>& used) {
  for (auto& m : specs) {
    if (m.method == "fp32") continue;
    m.gptq = args.gptq;
    if (m.method == "gptq") {
      m.method = "rtn";
      m.gptq.enabled = true;
    }
    if (m.gptq.enabled) {
      used.insert({"--gptq", "--damp", "--act-order", "--gptq-block"});
      if (m.method == "rtn") used.insert("--gptq-clip");  // the clipping search is for uniform grids only
      if (m.method == "lcq" && m.double_quantize)
        rankq::cli::option_error("--lcq-double-quant", "cannot be combined with GPTQ (docs/gptq.md §4.3)");
      rankq::example::check_gptq_choice(m);
    }
  }
}

/// The methods to run (MethodSpec per method x bits x rank), every value checked against the method it is for, and
/// every option that no requested method would use refused.
std::vector<MethodSpec> build_method_specs(const Args& args) {
  std::vector<MethodSpec> specs;
  std::set<std::string> used;  // options some method reads
  for (const auto& m : args.methods) {
    if (m == "fp32") {
      specs.push_back(MethodSpec{"fp32", 32, 0, 0});
      continue;
    }
    used.insert("--bits");
    if (m == "lqer" || m == "l2qer") {
      used.insert("--rank");
      for (unsigned b : args.bits) {
        if (b != 3 && b != 4) rankq::cli::option_error("--bits", m + " runs MXINT3 or MXINT4 weights, got " + std::to_string(b));
        for (std::size_t k : args.ranks.empty() ? std::vector<std::size_t>{16} : args.ranks) specs.push_back(MethodSpec{m, b, k, 16});
      }
      continue;
    }
    if (m == "lcq") {
      used.insert({"--rank", "--lcq-bits", "--lcq-rank", "--lcq-double-quant", "--group"});
      const auto& lb = args.lcq_bits.empty() ? args.bits : args.lcq_bits;
      const auto lr = !args.lcq_ranks.empty() ? args.lcq_ranks : !args.ranks.empty() ? args.ranks : std::vector<std::size_t>{2};
      const char* bits_option = args.lcq_bits.empty() ? "--bits" : "--lcq-bits";
      if (args.group != 0 && args.group != 32 && args.group != 64 && args.group != 128)
        rankq::cli::option_error("--group", "lcq groups are 32, 64, 128 or 0 (whole row), got " + std::to_string(args.group));
      for (unsigned b : lb) {
        if (b < 2 || b > 4) rankq::cli::option_error(bits_option, "lcq uses 2, 3 or 4-bit indices, got " + std::to_string(b));
        for (std::size_t k : lr) {
          if (k > rankq::kMaxCodebookRank)
            rankq::cli::option_error(args.lcq_ranks.empty() ? "--rank" : "--lcq-rank",
                                     "lcq ranks are 1.." + std::to_string(rankq::kMaxCodebookRank) + ", got " + std::to_string(k));
          specs.push_back(MethodSpec{m, b, k, args.group, args.lcq_double_quant});
        }
      }
      continue;
    }
    if (m != "rtn" && m != "mxint" && m != "gptq")
      rankq::cli::option_error("--method", "unknown method '" + m + "' (fp32, rtn, mxint, lqer, l2qer, lcq, gptq)");
    if (m == "rtn" || m == "gptq") used.insert("--group");
    for (unsigned b : args.bits) {
      if (b != 2 && b != 3 && b != 4 && b != 8) rankq::cli::option_error("--bits", m + " runs 2, 3, 4 or 8-bit weights, got " + std::to_string(b));
      if ((m == "rtn" || m == "gptq") && args.group != 0 && args.group != 16 && args.group != 32 && args.group != 64 && args.group != 128)
        rankq::cli::option_error("--group", "rtn groups are 16, 32, 64, 128 or 0 (whole row), got " + std::to_string(args.group));
      specs.push_back(MethodSpec{m, b, 0, args.group});
    }
  }
  apply_gptq(specs, args, used);
  const bool calibrated = std::any_of(specs.begin(), specs.end(), rankq::example::needs_calibration);
  if (calibrated) used.insert({"--calib", "--calib-range"});
  for (const char* opt : {"--bits", "--rank", "--lcq-bits", "--lcq-rank", "--lcq-double-quant", "--group", "--calib", "--calib-range",
                          "--gptq", "--damp", "--act-order", "--gptq-block", "--gptq-clip"})
    if (args.given.count(opt) && !used.count(opt))
      rankq::cli::option_error(opt, "is not used by any method of --method (it would be ignored)");
  std::size_t quantized = 0;
  for (const auto& m : specs) quantized += m.method != "fp32";
  if (!args.run.out_path.empty() && quantized != 1)
    rankq::cli::option_error("--out", "needs exactly one quantized method (got " + std::to_string(quantized) + ")");
  if (specs.empty() || specs.front().method != "fp32") specs.insert(specs.begin(), MethodSpec{"fp32", 32, 0, 0});  // the baseline for Δ
  return specs;
}

/// Everything about a --model run that can be checked before loading anything: the methods and their options, the
/// input files (readable regular files; the model's kind by its magic), and the outputs (dry check: writable
/// directory, absent or regular target, none of the inputs).
void validate_model_run(Args& args) {
  if (args.given.count("--shape")) rankq::cli::option_error("--shape", "is for the synthetic layer (without --model)");
  if (args.run.eval_path.empty()) rankq::cli::option_error("--model", "needs --eval (evaluation text)");
  if (args.run.calib_path.empty()) args.run.calib_path = args.run.eval_path;
  args.run.methods = build_method_specs(args);
  rankq::example::check_model_run_files(args.run, args.json_path);
}

int run_synthetic(const Args& args) {
  std::printf("rankq %s — synthetic layer %zux%zu (N x K), kernel path %s\n", rankq::kVersion, args.N, args.K,
              rankq::to_string(rankq::best_supported_path()));
  const auto layer = rankq::example::make_synthetic_layer(args.N, args.K);
  const auto rows = rankq::example::format_rows(layer);
  rankq::example::print_table("Uniform and MXINT formats (A8 = int8 per-token activations)", rows);
  const auto lqer = rankq::example::lqer_rows(layer.W, layer.N, layer.K, layer.calib, layer.calib_rows, layer.eval,
                                              layer.eval_rows);
  rankq::example::print_table("LQER / L2QER: MXINT weights + rank-k MXINT8 correction, MXINT8 activations (blocks of 16)", lqer);
  const auto lcq = rankq::example::lcq_rows(layer.W, layer.N, layer.K, layer.calib, layer.calib_rows, layer.eval,
                                            layer.eval_rows);
  rankq::example::print_table("LCQ: rank-k codebooks, groups of 128, D = E[x^2] from calibration (float activations unless / A8)", lcq);
  // GPTQ with the other tables' 256 calibration rows (fewer than K: H is singular, GPTQ overfits them), then with
  // 4·K rows of the same layer (same W and channel distribution; its own evaluation rows, so RTN is re-measured).
  const auto gptq = rankq::example::gptq_rows(layer);
  rankq::example::print_table("GPTQ vs RTN, H from the " + std::to_string(layer.calib_rows) +
                                  " calibration rows above (damp 0.01; same formats and activations)", gptq);
  const auto big = rankq::example::make_synthetic_layer(args.N, args.K, 4 * args.K);
  const auto gptq_big = rankq::example::gptq_rows(big);
  rankq::example::print_table("GPTQ vs RTN, H from " + std::to_string(big.calib_rows) +
                                  " calibration rows (same W; new evaluation rows)", gptq_big);
  if (!args.json_path.empty()) {
    nlohmann::json j = {{"formats", rankq::example::to_json(rows)}, {"lqer", rankq::example::to_json(lqer)},
                        {"lcq", rankq::example::to_json(lcq)}, {"gptq", rankq::example::to_json(gptq)},
                        {"gptq_calib_4k", rankq::example::to_json(gptq_big)}};
    const std::string text = j.dump(2) + "\n";
    rankq::io::write_file_atomic(args.json_path, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  }
  return 0;
}

int run_real_model(const Args& args) {
  const auto rows = rankq::example::run_model(args.run, nullptr, [&](const rankq::io::LlamaCheckpoint& weights) {
    rankq::example::check_methods_fit_model(args.run.methods, weights);  // before calibration and quantization
  });
  std::printf("\n%-28s %-11s %8s %11s %9s %10s %10s\n", "method", "activations", "bits/w", "perplexity", "Δ fp32", "tokens/s",
              "quant s");
  std::printf("%s\n", std::string(93, '-').c_str());
  for (const auto& r : rows)
    std::printf("%-28s %-11s %8.3f %11.4f %+9.4f %10.0f %10.2f\n", r.method.c_str(), r.activations.c_str(), r.bits_per_weight,
                r.perplexity, r.delta_vs_fp32, r.tokens_per_second, r.quantize_seconds);
  std::printf("(%zu evaluation tokens in paragraphs [%zu, %zu) of %s", rows.empty() ? 0 : rows[0].tokens,
              args.run.eval_range.begin, rows.empty() ? 0 : rows[0].eval_end, args.run.eval_path.c_str());
  const auto& mm = args.run.methods;
  if (std::any_of(mm.begin(), mm.end(), rankq::example::needs_calibration)) {
    const auto& cr = args.run.calib_range;
    std::printf("; calibration paragraphs [%zu, %s) of %s)\n", cr.begin,
                cr.end == rankq::llama::ParagraphRange::npos ? "end" : std::to_string(cr.end).c_str(), args.run.calib_path.c_str());
  } else {
    std::printf("; no method used calibration)\n");
  }
  if (!args.json_path.empty()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : rows)
      j.push_back({{"method", r.method}, {"activations", r.activations}, {"bits_per_weight", r.bits_per_weight}, {"perplexity", r.perplexity},
                   {"delta_vs_fp32", r.delta_vs_fp32}, {"tokens_per_second", r.tokens_per_second}, {"tokens", r.tokens},
                   {"quantize_seconds", r.quantize_seconds}});
    const std::string text = j.dump(2) + "\n";
    rankq::io::write_file_atomic(args.json_path, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  rankq::io::remove_temporary_files_on_signal();  // Ctrl-C during a write leaves no temporary file
  try {
    Args args = parse(argc, argv);
    if (args.run.model_path.empty()) {
      validate_synthetic(args);
      return run_synthetic(args);
    }
    validate_model_run(args);
    const int status = run_real_model(args);
    struct rusage usage {};
    if (::getrusage(RUSAGE_SELF, &usage) == 0)  // ru_maxrss: KiB on Linux; mapped file pages included
      std::printf("peak RSS: %.1f MB\n", static_cast<double>(usage.ru_maxrss) / 1024.0);
    return status;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rankq-quantize: %s\n", e.what());
    return 1;
  }
}
