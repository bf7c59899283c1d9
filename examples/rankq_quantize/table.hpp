// examples/rankq_quantize/table.hpp — prints TableRows as an aligned text table and as JSON.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "rankq_quantize/table_row.hpp"

namespace rankq::example {

inline void print_table(const std::string& title, const std::vector<TableRow>& rows, std::FILE* out = stdout) {
  std::size_t w = 6;
  for (const auto& r : rows) w = std::max(w, r.method.size());
  std::fprintf(out, "\n%s\n", title.c_str());
  std::fprintf(out, "%-*s  %9s  %12s  %12s\n", static_cast<int>(w), "method", "bits/w", "weight err", "output err");
  std::fprintf(out, "%s\n", std::string(w + 41, '-').c_str());
  for (const auto& r : rows)
    std::fprintf(out, "%-*s  %9.3f  %12.5f  %12.5f\n", static_cast<int>(w), r.method.c_str(), r.bits_per_weight,
                 r.weight_error, r.output_error);
}

inline nlohmann::json to_json(const std::vector<TableRow>& rows) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& r : rows)
    j.push_back({{"method", r.method}, {"bits_per_weight", r.bits_per_weight}, {"weight_error", r.weight_error},
                 {"output_error", r.output_error}});
  return j;
}

}  // namespace rankq::example
