// rankq-quantize — quantizes a layer (built-in synthetic default) with every rankq method and prints a table of
// bits per weight, relative weight error and relative output error. Usage: rankq-quantize --help
#include <rankq/rankq.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "rankq_quantize/synthetic.hpp"
#include "rankq_quantize/table.hpp"

namespace {

struct Args {
  std::string json_path;
  std::size_t N = 512, K = 1024;
};

void usage() {
  std::puts(
      "usage: rankq-quantize [--json FILE] [--shape NxK]\n"
      "  Without a model, quantizes the built-in deterministic synthetic layer (heavy-tailed weights, activations\n"
      "  with outlier channels) with every format and prints bits/weight, weight error and output error.\n"
      "  --json FILE   also write the table as JSON\n"
      "  --shape NxK   synthetic layer shape (default 512x1024)");
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("option " + arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      usage();
      std::exit(0);
    } else if (arg == "--json") {
      a.json_path = value();
    } else if (arg == "--shape") {
      const std::string v = value();
      const auto x = v.find('x');
      if (x == std::string::npos) throw std::runtime_error("--shape expects NxK, got '" + v + "'");
      a.N = std::stoul(v.substr(0, x));
      a.K = std::stoul(v.substr(x + 1));
      if (a.N == 0 || a.K == 0) throw std::runtime_error("--shape: N and K must be positive");
    } else {
      throw std::runtime_error("unknown option '" + arg + "' (see --help)");
    }
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args args = parse(argc, argv);
    std::printf("rankq %s — synthetic layer %zux%zu (N x K), kernel path %s\n", rankq::kVersion, args.N, args.K,
                rankq::to_string(rankq::best_supported_path()));
    const auto layer = rankq::example::make_synthetic_layer(args.N, args.K);
    const auto rows = rankq::example::format_rows(layer);
    rankq::example::print_table("Uniform and MXINT formats (A8 = int8 per-token activations)", rows);
    if (!args.json_path.empty()) {
      std::ofstream out(args.json_path);
      out << rankq::example::to_json(rows).dump(2) << "\n";
      if (!out) throw std::runtime_error("cannot write " + args.json_path);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rankq-quantize: %s\n", e.what());
    return 1;
  }
}
