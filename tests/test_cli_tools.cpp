// Runs the built rankq-quantize and rankq-llama binaries on bad command lines and bad files: every mistake is
// refused before any work with a message naming the option (and the layer), nothing is ever written over an input,
// a device, FIFO or symbolic link, and empty work is an error, never a perplexity.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
#include <sys/wait.h>

#include "test_data.hpp"

#if defined(RANKQ_QUANTIZE_BIN) && defined(RANKQ_LLAMA_BIN)

namespace {

namespace fs = std::filesystem;
const std::string kData = rankq_test::data_dir();

struct Result {
  int status = -1;
  std::string output;  // stdout and stderr
};

/// Runs `command` through the shell (stderr merged, 120 s limit) and returns its exit status and output.
Result run(const std::string& command) {
  Result r;
  FILE* p = ::popen(("timeout 120 " + command + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, p)) > 0;) r.output.append(buffer, n);
  const int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string quantize(const std::string& args) { return std::string(RANKQ_QUANTIZE_BIN) + " " + args; }
std::string llama(const std::string& args) { return std::string(RANKQ_LLAMA_BIN) + " " + args; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class CliTools : public ::testing::Test {
 protected:
  fs::path dir;
  std::string model, tok, text;
  void SetUp() override {
    RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt", "tinyllamas-stories-260k-f32.gguf");
    dir = fs::temp_directory_path() /
          ("rankq_cli_" + std::to_string(::getpid()) + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    model = (dir / "model.bin").string();  // copies: a test that overwrote an input would not harm the data folder
    fs::copy_file(kData + "/stories260K.bin", model);
    tok = kData + "/tok512.bin";
    text = kData + "/tinystories-valid-head.txt";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string model_args() const { return "--model " + model + " --tokenizer " + tok + " --eval " + text; }
  /// The command fails (exit status 1 or 2) and its output contains every `needles` entry.
  void expect_refused(const std::string& command, std::initializer_list<std::string> needles) {
    const Result r = run(command);
    EXPECT_TRUE(r.status == 1 || r.status == 2) << command << "\n" << r.output;
    for (const std::string& n : needles) EXPECT_NE(r.output.find(n), std::string::npos) << "'" << n << "' not in: " << r.output;
    for (const char* work : {"evaluation tokens", "PPL ", "calibration:", "quantize "})  // what a run prints
      EXPECT_EQ(r.output.find(work), std::string::npos) << "work was done before the refusal: " << r.output;
  }
};

TEST_F(CliTools, NumbersAreParsedStrictly) {
  expect_refused(quantize(model_args() + " --method rtn --bits -1"), {"--bits: '-1' is not a whole non-negative integer"});
  expect_refused(quantize(model_args() + " --method rtn --bits 4294967300"), {"--bits: '4294967300' is out of range"});
  expect_refused(quantize(model_args() + " --method rtn --bits 4x"), {"--bits: '4x'"});
  expect_refused(quantize(model_args() + " --method rtn --bits 4,,3"), {"--bits", "empty item"});
  expect_refused(quantize(model_args() + " --threads 0"), {"--threads: '0' is out of range"});
  expect_refused(quantize(model_args() + " --threads 100000"), {"--threads: '100000' is out of range"});
  expect_refused(quantize(model_args() + " --method rtn --group 48"), {"--group", "rtn groups are 16, 32, 64, 128"});
  expect_refused(quantize(model_args() + " --method lcq --rank 9"), {"--rank", "lcq ranks are 1..8"});
  expect_refused(quantize(model_args() + " --method mxint --bits 4 --bits 3"), {"--bits: is given twice"});
  expect_refused(quantize(model_args() + " --method gptq --gptq-clip 1001"), {"--gptq-clip: '1001' is out of range"});
  expect_refused(quantize(model_args() + " --method gptq --gptq-clip 0.5"), {"--gptq-clip: '0.5'"});
  expect_refused(llama(model + " --tokenizer " + tok + " perplexity --text " + text + " --threads -1"), {"--threads: '-1'"});
  expect_refused(llama(model + " --tokenizer " + tok + " perplexity --text " + text + " --threads 100000"), {"--threads: '100000'"});
  expect_refused(llama(model + " --tokenizer " + tok + " generate --steps 18446744073709551617"), {"--steps", "out of range"});
}

TEST_F(CliTools, OptionsThatWouldBeIgnoredAreRefused) {
  for (const char* opt : {"--out x.safetensors", "--method rtn", "--bits 7", "--rank 4", "--threads 2", "--eval-range 0:1"})
    expect_refused(quantize(opt), {std::string(opt).substr(0, std::string(opt).find(' ')) + ": needs --model"});
  expect_refused(quantize("--rank 0"), {"--rank: '0' is out of range"});
  expect_refused(quantize(model_args() + " --method rtn --rank 4"), {"--rank: is not used by any method"});
  expect_refused(quantize(model_args() + " --method lqer --calib-range 0:4"), {"--calib-range: is not used by any method"});
  expect_refused(quantize(model_args() + " --method rtn --lcq-bits 3"), {"--lcq-bits: is not used by any method"});
  expect_refused(quantize(model_args() + " --method fp32 --bits 4"), {"--bits: is not used by any method"});
  expect_refused(quantize(model_args() + " --method mxint --gptq --gptq-clip 5"), {"--gptq-clip: is not used by any method"});
  expect_refused(quantize(model_args() + " --method rtn --gptq-clip 5"), {"--gptq-clip: is not used by any method"});
  expect_refused(quantize("--gptq-clip 5"), {"--gptq-clip: needs --model"});
  expect_refused(quantize(model_args() + " --shape 8x8"), {"--shape: is for the synthetic layer"});
  expect_refused(quantize(model_args() + " --method rtn,mxint --out " + (dir / "o.safetensors").string()),
                 {"--out: needs exactly one quantized method"});
  expect_refused(quantize(model_args() + " --method lqer --rank 40 --eval-range 0:2"),
                 {"--rank: lqer k = 40 exceeds min(out, in) = 32 of layer 'blk.0.attn_k.weight'"});
}

TEST_F(CliTools, OutputNeverReplacesAnInputOrANonRegularFile) {
  const std::string before = slurp(model);
  const std::string same_dir = (dir / "." / "model.bin").string(), hard = (dir / "hard.bin").string();
  fs::create_hard_link(model, hard);
  for (const std::string& out : {model, same_dir, hard})
    expect_refused(quantize(model_args() + " --method rtn --out " + out), {"--out '" + out + "': is the input file"});
  const std::string eval_copy = (dir / "eval.txt").string();
  fs::copy_file(text, eval_copy);
  expect_refused(quantize("--model " + model + " --tokenizer " + tok + " --eval " + eval_copy + " --method rtn --out " + eval_copy),
                 {"is the input file"});
  expect_refused(quantize(model_args() + " --method rtn --json " + model), {"--json '" + model + "': is the input file"});
  EXPECT_EQ(slurp(model), before);
  const std::string fifo = (dir / "fifo").string(), link = (dir / "link").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  fs::create_symlink(dir / "elsewhere.safetensors", link);
  expect_refused(quantize(model_args() + " --method rtn --out " + fifo), {"--out '" + fifo + "'", "FIFO"});
  expect_refused(quantize(model_args() + " --method rtn --out " + link), {"symbolic link"});
  expect_refused(quantize(model_args() + " --method rtn --out /dev/null"), {"--out '/dev/null'", "device"});
  expect_refused(quantize(model_args() + " --method rtn --out " + (dir / "no" / "x").string()), {"--out", "cannot be used"});
  expect_refused(quantize(model_args() + " --method rtn --out " + dir.string()), {"is a directory"});
  EXPECT_EQ(fs::status(fifo).type(), fs::file_type::fifo);
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_FALSE(fs::exists(dir / "elsewhere.safetensors"));
}

TEST_F(CliTools, EmptyWorkIsAnError) {
  const std::string empty = (dir / "empty.txt").string(), blank = (dir / "blank.txt").string();
  std::ofstream(empty).close();
  std::ofstream(blank) << "  \n\n \t\n\n";
  expect_refused(quantize(model_args() + " --eval-range 5:5"), {"--eval-range: '5:5' is an empty range"});
  expect_refused(quantize(model_args() + " --method lcq --calib-range 3:3"), {"--calib-range: '3:3' is an empty range"});
  expect_refused(quantize(model_args() + " --method lcq --eval-range 0:2 --calib-range 4300:"), {"--calib-range", "holds no paragraph"});
  for (const std::string& t : {empty, blank}) {
    expect_refused(quantize("--model " + model + " --tokenizer " + tok + " --eval " + t), {"--eval-range", "holds no paragraph"});
    expect_refused(llama(model + " --tokenizer " + tok + " perplexity --text " + t), {"no token to score"});
  }
  expect_refused(llama(model + " --tokenizer " + tok + " perplexity --text " + text + " --begin 5 --end 5"), {"empty range"});
}

TEST_F(CliTools, UnreadableInputsAreIoErrorsWithThePathAndNeverBlock) {
  const std::string fifo = (dir / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_refused(quantize("--model " + fifo + " --tokenizer " + tok + " --eval " + text), {"'" + fifo + "'", "not a regular file"});
  expect_refused(quantize(model_args().substr(0, model_args().find(" --eval")) + " --eval " + dir.string()),
                 {"--eval '" + dir.string() + "': is a directory"});
  expect_refused(quantize("--model " + model + " --tokenizer " + (dir / "missing").string() + " --eval " + text),
                 {"--tokenizer '" + (dir / "missing").string() + "': cannot be opened"});
  expect_refused(llama(fifo + " info"), {"'" + fifo + "'", "not a regular file"});
  expect_refused(llama(model + " --tokenizer " + tok + " perplexity --text " + dir.string()), {"'" + dir.string() + "': it is a directory"});
  expect_refused(quantize("--model " + model + " --eval " + text), {"--tokenizer: is required for the llama2.c checkpoint"});
}

TEST_F(CliTools, ModelFormatIsDetectedByMagicBytes) {
  const std::string gguf_as_bin = (dir / "gguf.bin").string(), bin_as_gguf = (dir / "llama2c.gguf").string();
  fs::copy_file(kData + "/tinyllamas-stories-260k-f32.gguf", gguf_as_bin);
  fs::copy_file(model, bin_as_gguf);
  Result r = run(quantize("--model " + gguf_as_bin + " --eval " + text + " --method fp32 --eval-range 0:2"));
  EXPECT_EQ(r.status, 0) << r.output;
  r = run(quantize("--model " + bin_as_gguf + " --tokenizer " + tok + " --eval " + text + " --method fp32 --eval-range 0:2"));
  EXPECT_EQ(r.status, 0) << r.output;
  r = run(llama(gguf_as_bin + " info"));
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST_F(CliTools, OutWritesALoadableFileAndLeavesNoTemporary) {
  const std::string out = (dir / "q.safetensors").string(), json = (dir / "t.json").string();
  std::ofstream(out) << "old";  // a regular file is replaced
  const Result r = run(quantize(model_args() + " --method rtn --eval-range 0:2 --out " + out + " --json " + json));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_GT(fs::file_size(out), 100000u);
  EXPECT_NE(slurp(json).find("\"perplexity\""), std::string::npos);
  std::size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) entries += e.path().filename().string().find(".tmp.") == std::string::npos ? 1 : 100;
  EXPECT_EQ(entries, 3u);  // model.bin, q.safetensors, t.json: no temporary file
}

// The engine runs what the quantizer writes (#13 item 4): rankq-llama maps the --out file into prepared layers and
// measures the same perplexity, to every printed digit, as rankq-quantize reported for that model.
TEST_F(CliTools, EngineRunsTheQuantizedFileWithTheSamePerplexity) {
  const std::string calib = " --calib-range 20:28";
  for (const std::string& method : std::vector<std::string>{"rtn --bits 4", "mxint --bits 3", "l2qer --bits 4 --rank 8" + calib,
                                                            "lcq --bits 3 --rank 2" + calib, "rtn --bits 8"}) {
    const std::string out = (dir / "q.safetensors").string(), json = (dir / "q.json").string();
    Result r = run(quantize(model_args() + " --method " + method + " --eval-range 0:12 --out " + out + " --json " + json));
    ASSERT_EQ(r.status, 0) << method << "\n" << r.output;
    const nlohmann::json rows = nlohmann::json::parse(slurp(json));
    ASSERT_EQ(rows.size(), 2u) << rows.dump();  // fp32 and the method
    char want[32];
    std::snprintf(want, sizeof want, "PPL %.5f", rows[1]["perplexity"].get<double>());
    r = run(llama(out + " --tokenizer " + tok + " perplexity --text " + text + " --end 12 --threads 2"));
    ASSERT_EQ(r.status, 0) << method << "\n" << r.output;
    EXPECT_NE(r.output.find(want), std::string::npos) << method << ": expected " << want << " in " << r.output;
    r = run(llama(out + " --tokenizer " + tok + " generate --prompt Once --steps 12"));
    EXPECT_EQ(r.status, 0) << method << "\n" << r.output;
    EXPECT_GT(r.output.size(), 10u) << r.output;
  }
  expect_refused(llama((dir / "q.safetensors").string() + " info"), {"quantized model needs --tokenizer"});
}

}  // namespace

#else
TEST(CliTools, NeedsTheExamples) { GTEST_SKIP() << "rankq-quantize / rankq-llama are not built (RANKQ_BUILD_EXAMPLES=OFF)"; }
#endif
