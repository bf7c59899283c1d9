// examples/rankq_quantize/cli_checks.hpp — the checks rankq-quantize runs before any long work: its input files
// (readable regular files, the model's kind from its magic bytes), its outputs (a dry check of --out and --json),
// and, once the model's shapes are known but before calibration, that every method fits every projection.
#pragma once

#include <rankq/io/detect.hpp>
#include <rankq/io/file.hpp>
#include <rankq/io/llama_model.hpp>
#include <rankq/io/output_path.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/options.hpp"
#include "llama/model.hpp"
#include "rankq_quantize/methods.hpp"
#include "rankq_quantize/model_run.hpp"

namespace rankq::example {

/// Throws io_error naming `option` and `path` unless it is a regular file this process can open for reading
/// (checked without blocking on a FIFO).
inline void check_input_file(const std::string& option, const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw io::io_error(option + " '" + path + "': cannot be opened: " + std::strerror(errno));
  struct stat st {};
  const bool ok = ::fstat(fd, &st) == 0;
  ::close(fd);
  if (!ok || S_ISDIR(st.st_mode)) throw io::io_error(option + " '" + path + "': is a directory, expected a file");
  if (!S_ISREG(st.st_mode)) throw io::io_error(option + " '" + path + "': is not a regular file");
}

/// The input and output checks of a --model run (before anything is loaded).
inline void check_model_run_files(const ModelRunOptions& o, const std::string& json_path) {
  std::vector<std::string> inputs = {o.model_path, o.tokenizer_path, o.eval_path, o.calib_path};
  if (std::filesystem::is_directory(o.model_path)) {  // a Hugging Face folder (read_hf_llama checks the rest)
    check_input_file("--model", o.model_path + "/config.json");
    if (o.tokenizer_path.empty()) check_input_file("--model", o.model_path + "/tokenizer.json");
    for (const auto& entry : std::filesystem::directory_iterator(o.model_path))
      if (entry.is_regular_file()) inputs.push_back(entry.path().string());  // --out must not land on a shard
  } else {
    const io::ModelFileKind kind = io::detect_model_file(o.model_path);
    if (kind == io::ModelFileKind::safetensors)
      cli::option_error("--model", "'" + o.model_path + "' is a single safetensors file; pass the Hugging Face folder that "
                                   "holds it (config.json, safetensors, tokenizer.json), a GGUF or a llama2.c checkpoint");
    if (kind == io::ModelFileKind::llama2c && o.tokenizer_path.empty())
      cli::option_error("--tokenizer", "is required for the llama2.c checkpoint '" + o.model_path + "'");
  }
  if (!o.tokenizer_path.empty()) check_input_file("--tokenizer", o.tokenizer_path);
  check_input_file("--eval", o.eval_path);
  check_input_file("--calib", o.calib_path);
  if (!o.out_path.empty()) io::check_output_path("--out", o.out_path, inputs);
  if (!json_path.empty()) io::check_output_path("--json", json_path, inputs);
  if (!o.out_path.empty() && !json_path.empty() && (o.out_path == json_path || io::same_file(o.out_path, json_path)))
    cli::option_error("--json", "'" + json_path + "' is also the --out file");
}

/// Once the model is loaded (before calibration and quantization): every method's rank fits every projection.
/// The message names the option, the method and the first layer that does not fit.
/// `Weights`: io::LlamaModel or io::LlamaCheckpoint (only the config and the shapes are read).
template <typename Weights>
void check_methods_fit_model(const std::vector<MethodSpec>& methods, const Weights& weights) {
  const int layers = weights.config.n_layers;
  for (const MethodSpec& m : methods) {
    if (m.method != "lqer" && m.method != "l2qer") continue;
    for (int l = 0; l < layers; ++l)
      for (const std::string& suffix : llama::projection_suffixes()) {
        const std::string name = llama::block_tensor_name(static_cast<std::size_t>(l), suffix);
        const auto& shape = weights.at(name).shape;
        const std::uint64_t fit = shape.size() == 2 ? std::min(shape[0], shape[1]) : 0;
        if (m.rank > fit)
          cli::option_error("--rank", m.method + " k = " + std::to_string(m.rank) + " exceeds min(out, in) = " + std::to_string(fit) +
                                          " of layer '" + name + "'");
      }
  }
}

}  // namespace rankq::example
