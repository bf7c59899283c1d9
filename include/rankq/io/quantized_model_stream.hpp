// rankq/io/quantized_model_stream.hpp — writes a quantized model file (rankq-quantized-llama/3, docs/io.md) tensor
// by tensor as a pipeline produces them, without holding the model: each tensor's bytes go to an unnamed spool file
// next to the output as soon as they are added (the caller frees the layer right after), and finish() writes the
// output atomically — header first, then the spooled tensors in the file's order — and renames it into place.
// The output is byte for byte what write_quantized_model writes for the same tensors.
//
//   rankq::io::QuantizedModelStream out("model.rq.safetensors", config, "RTN W4A8 g32");
//   out.add_tensor("token_embd.weight", embedding);          // float tensors (F32), or (name, dtype, shape, bytes)
//                                                            // in their own element type (a checkpoint's BF16)
//   out.add_projection("blk.0.attn_q.weight", projection);   // prepared layers, written now; free them afterwards
//   ...
//   out.finish();                                            // every tensor the config implies, then the rename
#pragma once

#include "rankq/detail/abi.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "rankq/error.hpp"
#include "rankq/io/detail/quantized_model_meta.hpp"
#include "rankq/io/detail/quantized_model_packed.hpp"
#include "rankq/io/detail/quantized_model_writer.hpp"
#include "rankq/io/file.hpp"
#include "rankq/io/llama_model.hpp"
#include "rankq/io/quantized_projection.hpp"
#include "rankq/io/quantized_tensors.hpp"
#include "rankq/io/tensor.hpp"
#include "rankq/version.hpp"

RANKQ_NAMESPACE_BEGIN namespace io {

class QuantizedModelStream {
 public:
  /// Checks the config (rankq::invalid_argument naming it) and that `path` is absent or a regular file (io_error),
  /// and creates the spool: an unnamed file (O_TMPFILE) in the output's directory, or, where the file system has no
  /// O_TMPFILE, a temporary file unlinked at once. Nothing is ever visible at `path` before finish() completes.
  QuantizedModelStream(std::string path, const LlamaConfig& config, const std::string& method)
      : path_(std::move(path)), config_(config) {
    constexpr const char* fn = "io::QuantizedModelStream";
    rankq::detail::require(!path_.empty(), fn, "path", "is empty");
    try {
      detail::check_llama_config(config_, fn);
    } catch (const format_error& e) {
      rankq::detail::throw_argument(fn, "config", e.what());
    }
    for (const auto& [name, shape] : detail::llama_tensor_shapes(config_)) expected_[name] = shape;
    expected_["output.weight"] = {static_cast<std::uint64_t>(config_.vocab_size), static_cast<std::uint64_t>(config_.dim)};
    struct stat target {};
    if (::lstat(path_.c_str(), &target) == 0 && !S_ISREG(target.st_mode))
      throw io_error("rankq::io: refusing to replace '" + path_ + "': it is not a regular file");
    const std::string dir = detail::parent_dir(path_);
    spool_.fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (spool_.fd < 0) {
      std::string tmp = path_ + ".spool.XXXXXX";
      spool_.fd = ::mkstemp(tmp.data());
      if (spool_.fd < 0) detail::throw_io("create a spool file next to", path_, errno);
      ::unlink(tmp.c_str());
    }
    meta_ = {{"rankq.format", kQuantizedModelFormat}, {"rankq.version", kVersion}, {"rankq.method", method},
             {"rankq.config", detail::config_to_json(config_)}};
  }
  QuantizedModelStream(const QuantizedModelStream&) = delete;
  QuantizedModelStream& operator=(const QuantizedModelStream&) = delete;

  /// A float tensor (embedding, norm, classifier, or a projection kept in float), stored as F32. Checked: a name
  /// and shape the config implies, not given before, values matching the shape and finite.
  void add_tensor(const std::string& name, const FloatTensor& t) {
    constexpr const char* fn = "io::QuantizedModelStream::add_tensor";
    check_new(fn, name, t.shape);
    std::uint64_t count = 0;
    rankq::detail::require(detail::product_ok(t.shape, ~std::uint64_t{0}, count) && count == t.data.size(), fn, "t",
                           "'" + name + "' has a shape that does not match its values");
    for (float v : t.data) rankq::detail::require(std::isfinite(v), fn, "t", "'" + name + "' has a non-finite value");
    spool(name, {DType::f32, t.shape, reinterpret_cast<const std::uint8_t*>(t.data.data()), t.data.size() * 4, 0});
    shapes_.emplace(name, t.shape);
  }

  /// A float tensor in its own element type: the `shape`'s count of little-endian `dtype` values (F32, F16 or BF16)
  /// at `bytes` — e.g. a checkpoint's mapped BF16 embedding, norms or classifier — stored as they are: no conversion
  /// to F32 (a BF16 tensor keeps its 2 bytes per value in the file) and no copy in memory. Same checks as the
  /// FloatTensor overload; the values are decoded a chunk at a time for the finiteness check.
  void add_tensor(const std::string& name, DType dtype, const std::vector<std::uint64_t>& shape, const std::uint8_t* bytes) {
    constexpr const char* fn = "io::QuantizedModelStream::add_tensor";
    rankq::detail::require(is_float_dtype(dtype), fn, "dtype", std::string("= ") + dtype_name(dtype) + ": expected F32, F16 or BF16");
    std::uint64_t count = 0;
    rankq::detail::require(detail::product_ok(shape, ~std::uint64_t{0} / 4, count), fn, "shape", "of '" + name + "' overflows");
    rankq::detail::require(bytes != nullptr || count == 0, fn, "bytes", "is null");
    check_new(fn, name, shape);
    const std::size_t width = dtype_size(dtype);
    std::vector<float> chunk(std::size_t{1} << 14);
    for (std::uint64_t at = 0; at < count; at += chunk.size()) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), count - at));
      decode_floats(dtype, bytes + at * width, n, chunk.data());
      for (std::size_t i = 0; i < n; ++i)
        rankq::detail::require(std::isfinite(chunk[i]), fn, "bytes",
                               "'" + name + "' has a non-finite value at index " + std::to_string(at + i));
    }
    spool(name, {dtype, shape, bytes, static_cast<std::size_t>(count * width), 0});
    shapes_.emplace(name, shape);
  }

  /// A quantized projection (its packed layer or 8-bit reference weights), written to the spool now, so the caller
  /// may free it on return. Same checks as write_quantized_model (one of layer/reference, no bias, shape).
  void add_projection(const std::string& name, const QuantizedProjection& p) {
    constexpr const char* fn = "io::QuantizedModelStream::add_projection";
    rankq::detail::require(!p.layer != !p.reference, fn, "p", "'" + name + "' needs exactly one of layer, reference");
    check_new(fn, name, {p.out_features(), p.in_features()});
    if (p.layer) {
      rankq::detail::require(p.layer->bias().empty(), fn, "p", "'" + name + "' has a bias, which this format does not store");
      std::map<std::string, detail::OutTensor> out;
      detail::put_packed_layer(out, meta_, name, *p.layer, p.label, p.bits_per_weight);
      for (const auto& [tensor, t] : out) spool(tensor, t);
    } else {
      TensorMap canonical;
      put_uniform(canonical, meta_, name, *p.reference);
      nlohmann::json d = nlohmann::json::parse(meta_[name]);
      d.update({{"label", p.label}, {"bits_per_weight", p.bits_per_weight}});
      meta_[name] = d.dump();
      meta_[name + ":activation"] = detail::activation_to_json(p.activation);
      for (const auto& [tensor, t] : canonical) spool(tensor, {t.dtype, t.shape, t.bytes.data(), t.bytes.size(), 0});
    }
    shapes_.emplace(name, std::vector<std::uint64_t>{p.out_features(), p.in_features()});
  }

  /// Bytes spooled so far (the data section of the output).
  std::uint64_t spooled_bytes() const { return spooled_; }

  /// Checks that every tensor the config implies was added (output.weight is optional, as in write_quantized_model),
  /// then writes the output atomically: header, then the spooled tensors (packed ones first, each group in name
  /// order), copied from the spool in 4 MiB pieces. Throws rankq::invalid_argument (a missing tensor) or io_error;
  /// `path` is untouched then. Call once.
  void finish() {
    constexpr const char* fn = "io::QuantizedModelStream::finish";
    rankq::detail::require(!finished_, fn, "this", "was already finished");
    for (const auto& e : expected_)
      rankq::detail::require(e.first == "output.weight" || shapes_.count(e.first), fn, "tensors",
                             "do not cover the config: '" + e.first + "' was not added");
    try {
      detail::check_shapes_match_config(config_, shapes_, path_);
    } catch (const format_error& e) {
      rankq::detail::throw_argument(fn, "tensors", std::string("do not cover the config: ") + e.what());
    }
    finished_ = true;
    const std::vector<std::string> order = detail::aligned_order(records_);
    const std::string prefix = detail::aligned_safetensors_prefix(records_, order, meta_);
    std::vector<std::uint8_t> buffer(std::size_t{4} << 20);
    write_file_atomic_with(path_, [&](const std::function<void(const std::uint8_t*, std::size_t)>& write) {
      write(reinterpret_cast<const std::uint8_t*>(prefix.data()), prefix.size());
      for (const std::string& name : order) {
        const detail::TensorRecord& r = records_.at(name);
        std::uint64_t at = offsets_.at(name), left = r.size + r.pad;
        while (left > 0) {
          const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, buffer.size()));
          const ::ssize_t n = ::pread(spool_.fd, buffer.data(), want, static_cast<::off_t>(at));
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) detail::throw_io("read back the spool of", path_, n < 0 ? errno : EIO);
          write(buffer.data(), static_cast<std::size_t>(n));
          at += static_cast<std::uint64_t>(n);
          left -= static_cast<std::uint64_t>(n);
        }
      }
    });
  }

 private:
  void check_new(const char* fn, const std::string& name, const std::vector<std::uint64_t>& shape) {
    rankq::detail::require(!finished_, fn, "this", "was already finished");
    const auto it = expected_.find(name);
    rankq::detail::require(it != expected_.end(), fn, "name", "'" + name + "' is not a tensor of this model's config");
    rankq::detail::require(it->second == shape, fn, "name", "'" + name + "' does not have the shape the config implies");
    rankq::detail::require(shapes_.count(name) == 0, fn, "name", "'" + name + "' was already added");
  }

  void spool(const std::string& name, const detail::OutTensor& t) {
    static const std::uint8_t zeros[detail::kPackedAlignment] = {};
    rankq::detail::require(records_.count(name) == 0, "io::QuantizedModelStream", "tensors", "'" + name + "' is written twice");
    records_[name] = {t.dtype, t.shape, t.size, t.pad, detail::padded_crc32c(t.data, t.size, t.pad)};
    offsets_[name] = spooled_;
    put(t.data, t.size);
    for (std::size_t left = t.pad; left > 0; left -= std::min(left, detail::kPackedAlignment))
      put(zeros, std::min(left, detail::kPackedAlignment));
  }

  void put(const std::uint8_t* data, std::size_t size) {
    for (std::size_t done = 0; done < size;) {
      const ::ssize_t n = ::write(spool_.fd, data + done, size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) detail::throw_io("write the spool of", path_, n < 0 ? errno : EIO);
      done += static_cast<std::size_t>(n);
    }
    spooled_ += size;
  }

  std::string path_;
  LlamaConfig config_;
  std::map<std::string, std::vector<std::uint64_t>> expected_, shapes_;
  std::map<std::string, std::string> meta_;
  std::map<std::string, detail::TensorRecord> records_;
  std::map<std::string, std::uint64_t> offsets_;
  std::uint64_t spooled_ = 0;
  detail::FdGuard spool_;
  bool finished_ = false;
};

}  RANKQ_NAMESPACE_END  // namespace rankq::io
