// tests/test_llama_engine.cpp — the engine on stories260K: greedy sample, reference PPL, prefill = decode, hooks.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "llama/calibration.hpp"
#include "llama/generate.hpp"
#include "llama/model.hpp"
#include "llama/perplexity.hpp"
#include "llama/tokenizer.hpp"
#include "rankq/io/gguf.hpp"
#include "rankq/io/llama2c.hpp"
#include "test_data.hpp"
#include "test_util.hpp"

namespace {

namespace llama = rankq::llama;

std::string data_file(const std::string& name) { return rankq_test::data_path(name); }

const rankq::io::LlamaModel& weights() {
  static const rankq::io::LlamaModel w = rankq::io::read_llama2c(data_file("stories260K.bin"));
  return w;
}
const llama::Model& model() {
  static const llama::Model m(weights());
  return m;
}
const llama::Tokenizer& tokenizer() {
  static const llama::Tokenizer t = llama::Tokenizer::from_file(data_file("tok512.bin"), 512);
  return t;
}
const std::vector<std::string>& paragraphs() {
  static const std::vector<std::string> p = llama::load_paragraphs(data_file("tinystories-valid-head.txt"));
  return p;
}

/// Largest |a - b| / (1 + |b|).
double max_relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]) / (1.0 + std::abs(static_cast<double>(b[i]))));
  return worst;
}

// Karpathy's documented stories260K sample (llama2.c README, run -t 0.0).
TEST(LlamaEngine, GreedyGenerationReproducesDocumentedSample) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  const std::string expected =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw "
      "a big, red ball. She wanted to play with it, but it was too high.\nLily's mom said, \"Lily, let's go to the "
      "park.\" Lily was sad and didn't know what to do.";
  const std::vector<int> generated = llama::generate_greedy(model(), {tokenizer().bos_id()}, 110, {1, 2});
  std::vector<int> all = {tokenizer().bos_id()};
  all.insert(all.end(), generated.begin(), generated.end());
  const std::string text = tokenizer().decode(all);
  EXPECT_EQ(text.substr(0, expected.size()), expected) << "generated: " << text;

  // With a prompt, the prompt tokens are forced and the continuation is the same story.
  const std::vector<int> prompt = tokenizer().encode("Once upon a time, there was a little girl");
  const std::vector<int> continued = llama::generate_greedy(model(), prompt, 30, {1, 2});
  std::vector<int> prompted = prompt;
  prompted.insert(prompted.end(), continued.begin(), continued.end());
  EXPECT_EQ(tokenizer().decode(prompted).substr(0, 60), expected.substr(0, 60));
}

// The data README's protocol and reference numbers (fp32, first 40 paragraphs: NLL 1.3565, PPL 3.883).
TEST(LlamaEngine, PerplexityOfFirst40ParagraphsMatchesReference) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  llama::PerplexityOptions options;
  options.range = {0, 40};
  const llama::PerplexityResult r = llama::evaluate_perplexity(model(), tokenizer(), paragraphs(), options);
  EXPECT_EQ(r.paragraphs, 40u);
  EXPECT_EQ(r.tokens, 4059u);
  EXPECT_NEAR(r.perplexity, 3.883, 1e-3);
  EXPECT_NEAR(r.mean_nll, 1.3565, 1e-4);
  EXPECT_GT(r.tokens_per_second, 0.0);
  ASSERT_EQ(r.paragraph_nll.size(), 40u);
}

TEST(LlamaEngine, ProtocolParagraphAndTokenCounts) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  ASSERT_EQ(paragraphs().size(), 4300u);
  EXPECT_EQ(paragraphs()[0].substr(0, 30), "Spot. Spot saw the shiny car a");
  std::size_t tokens = 0;
  for (const auto& p : paragraphs()) tokens += tokenizer().encode(p).size() - 1;
  EXPECT_EQ(tokens, 380662u);  // the README's count for all 4,300 paragraphs
}

TEST(LlamaEngine, PerplexityIsIndependentOfThreadCount) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  llama::PerplexityOptions options;
  options.range = {40, 48};
  options.threads = 1;
  const auto one = llama::evaluate_perplexity(model(), tokenizer(), paragraphs(), options);
  options.threads = 3;
  std::vector<std::size_t> progress;
  options.progress = [&](std::size_t done, std::size_t total) {
    EXPECT_EQ(total, 8u);
    progress.push_back(done);
  };
  const auto three = llama::evaluate_perplexity(model(), tokenizer(), paragraphs(), options);
  EXPECT_EQ(progress, (std::vector<std::size_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(one.mean_nll, three.mean_nll);
  EXPECT_EQ(one.paragraph_nll, three.paragraph_nll);
  EXPECT_EQ(one.tokens, three.tokens);
}

TEST(LlamaEngine, ForwardSequenceEqualsStepByStepDecode) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  const std::vector<int> tokens = tokenizer().encode(paragraphs()[1]);
  ASSERT_GT(tokens.size(), 20u);
  const std::vector<float> prefill = model().forward_sequence(tokens);
  const std::size_t vocab = model().vocab_size();
  ASSERT_EQ(prefill.size(), tokens.size() * vocab);
  llama::DecodeSession session(model());
  std::vector<float> decoded;
  for (std::size_t pos = 0; pos < tokens.size(); ++pos) {
    const std::vector<float>& logits = session.forward_token(tokens[pos], pos);
    decoded.insert(decoded.end(), logits.begin(), logits.end());
  }
  EXPECT_LE(max_relative_difference(decoded, prefill), 1e-5);
  EXPECT_EQ(decoded, prefill) << "DenseLinear rows do not depend on M, so fp32 prefill and decode are bitwise equal";

  // A prefill split into two chunks over one cache gives the same logits too.
  llama::KvCache cache = model().make_cache();
  std::vector<float> chunked(tokens.size() * vocab);
  const std::size_t half = tokens.size() / 2;
  model().forward_chunk(tokens.data(), half, 0, cache, chunked.data());
  model().forward_chunk(tokens.data() + half, tokens.size() - half, half, cache, chunked.data() + half * vocab);
  EXPECT_LE(max_relative_difference(chunked, prefill), 1e-5);
}

// The GGUF conversion holds bit-identical tensors, so the model built from it computes identical logits, and its
// embedded vocabulary (SentencePiece "▁" spaces, "<s>") tokenizes exactly like tok512.bin.
TEST(LlamaEngine, GgufModelAndVocabularyMatchLlama2c) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt", "tinyllamas-stories-260k-f32.gguf");
  const rankq::io::GgufFile file = rankq::io::read_gguf(data_file("tinyllamas-stories-260k-f32.gguf"));
  const llama::Model gguf_model(rankq::io::load_llama_gguf(file));
  const auto& a = gguf_model.config();
  const auto& b = model().config();
  EXPECT_EQ(std::vector<int>({a.dim, a.hidden_dim, a.n_layers, a.n_heads, a.n_kv_heads, a.vocab_size, a.seq_len}),
            std::vector<int>({b.dim, b.hidden_dim, b.n_layers, b.n_heads, b.n_kv_heads, b.vocab_size, b.seq_len}));
  const std::vector<int> tokens = tokenizer().encode(paragraphs()[2]);
  EXPECT_EQ(gguf_model.forward_sequence(tokens), model().forward_sequence(tokens));

  rankq::io::GgufVocab vocab = rankq::io::gguf_vocab(file);
  const llama::Tokenizer gguf_tokenizer =
      llama::Tokenizer::from_vocabulary(std::move(vocab.tokens), std::move(vocab.scores), vocab.bos, vocab.eos);
  ASSERT_EQ(gguf_tokenizer.vocab_size(), 512u);
  EXPECT_EQ(gguf_tokenizer.bos_id(), 1);
  EXPECT_EQ(gguf_tokenizer.eos_id(), 2);
  for (std::size_t i = 0; i < 200; ++i) {
    const std::vector<int> ids = gguf_tokenizer.encode(paragraphs()[i]);
    EXPECT_EQ(ids, tokenizer().encode(paragraphs()[i])) << "paragraph " << i;
    EXPECT_EQ(gguf_tokenizer.decode(ids), paragraphs()[i]);
  }
}

TEST(LlamaEngine, ObserverSeesEveryLinearInput) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  struct Call {
    std::string name;
    std::size_t M, K;
    float first;
  };
  std::vector<Call> calls;
  const std::vector<int> tokens = {1, 403, 407, 261, 378, 432, 383};
  const auto logits =
      model().forward_sequence(tokens, [&](const std::string& name, const float* x, std::size_t M, std::size_t K) {
        calls.push_back({name, M, K, x[0]});
      });
  EXPECT_EQ(logits, model().forward_sequence(tokens));  // observing changes nothing
  ASSERT_EQ(calls.size(), 35u);
  EXPECT_EQ(model().projection_names().size(), 35u);
  for (std::size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].name, model().projection_names()[i]);
    EXPECT_EQ(calls[i].M, tokens.size());
    EXPECT_EQ(calls[i].K, calls[i].name.find("ffn_down") != std::string::npos ? 172u : 64u) << calls[i].name;
  }
  EXPECT_EQ(calls[0].name, "blk.0.attn_q.weight");
  EXPECT_EQ(calls[6].name, "blk.0.ffn_down.weight");
  EXPECT_EQ(calls[0].first, calls[1].first);  // q, k, v share the normed input
  EXPECT_EQ(calls[4].first, calls[5].first);  // gate and up too
}

/// Wraps the fp32 layer, reporting a made-up bit width, to check the factory plumbing.
struct LabelledLinear final : llama::Linear {
  std::unique_ptr<llama::DenseLinear> inner;
  double bits;
  std::size_t in_features() const override { return inner->in_features(); }
  std::size_t out_features() const override { return inner->out_features(); }
  void forward(const float* x, std::size_t M, float* y) const override { inner->forward(x, M, y); }
  double bits_per_weight() const override { return bits; }
  std::string name() const override { return "labelled"; }
};

TEST(LlamaEngine, FactoryBuildsEveryProjection) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  std::vector<std::string> built;
  const llama::Model custom(weights(), [&](const std::string& name, const rankq::io::FloatTensor& w) {
    built.push_back(name);
    auto layer = std::make_unique<LabelledLinear>();
    layer->inner = llama::DenseLinear::from_tensor(name, w);
    layer->bits = name.find("ffn") != std::string::npos ? 4.0 : 8.0;
    return std::unique_ptr<llama::Linear>(std::move(layer));
  });
  EXPECT_EQ(built, model().projection_names());
  EXPECT_EQ(custom.projection("blk.2.ffn_up.weight").name(), "labelled");
  EXPECT_EQ(model().projection("blk.2.ffn_up.weight").name(), "fp32");
  // attention: 64*64*2 + 32*64*2 = 12288 weights at 8 bits, ffn: 3*172*64 = 33024 at 4 bits.
  EXPECT_NEAR(custom.projection_bits_per_weight(), (12288.0 * 8 + 33024.0 * 4) / (12288.0 + 33024.0), 1e-12);
  EXPECT_DOUBLE_EQ(model().projection_bits_per_weight(), 32.0);
  const std::vector<int> tokens = tokenizer().encode("One day, a cat");
  EXPECT_EQ(custom.forward_sequence(tokens), model().forward_sequence(tokens));

  test::expect_invalid(
      [&] {
        llama::Model bad(weights(), [](const std::string&, const rankq::io::FloatTensor&) {
          return std::unique_ptr<llama::Linear>();
        });
      },
      "returned null for 'blk.0.attn_q.weight'");
  test::expect_invalid(
      [&] {
        llama::Model bad(weights(), [](const std::string&, const rankq::io::FloatTensor& w) {
          std::vector<float> square(64 * 64, 0.0f);
          (void)w;
          return std::unique_ptr<llama::Linear>(std::make_unique<llama::DenseLinear>(square.data(), 64, 64));
        });
      },
      "built 'blk.0.attn_k.weight' as 64x64, expected 32x64");
  test::expect_invalid([] { (void)model().projection("output.weight"); }, "is not a projection");
}

TEST(LlamaEngine, CalibrationStreamsOneBatchPerParagraph) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  llama::CalibrationTaps taps;
  std::vector<std::size_t> rows_q, rows_down;
  std::size_t k_down = 0;
  taps.add("blk.0.attn_q.weight", [&](const float*, std::size_t M, std::size_t K) {
    rows_q.push_back(M);
    EXPECT_EQ(K, 64u);
  });
  taps.add("blk.4.ffn_down.weight", [&](const float*, std::size_t M, std::size_t K) {
    rows_down.push_back(M);
    k_down = K;
  });
  llama::CalibrationOptions options;
  options.range = {100, 103};
  std::size_t last_progress = 0;
  options.progress = [&](std::size_t done, std::size_t total) {
    EXPECT_EQ(total, 3u);
    last_progress = done;
  };
  const auto summary = llama::run_calibration(model(), tokenizer(), paragraphs(), options, taps);
  std::vector<std::size_t> expected;
  for (std::size_t p = 100; p < 103; ++p) expected.push_back(tokenizer().encode(paragraphs()[p]).size());
  EXPECT_EQ(rows_q, expected);
  EXPECT_EQ(rows_down, expected);
  EXPECT_EQ(k_down, 172u);
  EXPECT_EQ(summary.paragraphs, 3u);
  EXPECT_EQ(last_progress, 3u);
  EXPECT_EQ(summary.batches, 3u);
  EXPECT_EQ(summary.tokens, expected[0] + expected[1] + expected[2]);

  // A short context cuts each paragraph into consecutive batches of at most 16 tokens.
  rows_q.clear();
  options.context = 16;
  const auto windowed = llama::run_calibration(model(), tokenizer(), paragraphs(), options, taps);
  std::size_t batches = 0;
  for (std::size_t n : expected) batches += (n + 15) / 16;
  EXPECT_EQ(windowed.batches, batches);
  EXPECT_EQ(rows_q.size(), batches);
  EXPECT_EQ(*std::max_element(rows_q.begin(), rows_q.end()), 16u);

  taps.add("blk.9.attn_q.weight", [](const float*, std::size_t, std::size_t) {});
  test::expect_invalid([&] { (void)llama::run_calibration(model(), tokenizer(), paragraphs(), options, taps); },
                       "'blk.9.attn_q.weight' is not a projection");
}

TEST(LlamaEngine, LongSequencesUseOverlappingWindows) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  for (std::size_t length : {1u, 2u, 15u, 16u, 17u, 40u, 100u}) {
    const auto windows = llama::plan_scoring_windows(length, 16);
    std::vector<int> scored(length, 0);
    for (const auto& w : windows) {
      EXPECT_LE(w.end - w.begin, 16u);
      EXPECT_GE(w.first_scored, w.begin + (w.begin == 0 ? 1 : 8)) << "each scored token has >= 8 tokens of context";
      for (std::size_t i = w.first_scored; i < w.end; ++i) ++scored[i];
    }
    for (std::size_t i = 1; i < length; ++i) EXPECT_EQ(scored[i], 1) << "length " << length << ", token " << i;
  }
  llama::PerplexityOptions options;
  options.range = {0, 3};
  const auto full = llama::evaluate_perplexity(model(), tokenizer(), paragraphs(), options);
  options.context = 16;
  const auto windowed = llama::evaluate_perplexity(model(), tokenizer(), paragraphs(), options);
  EXPECT_EQ(windowed.tokens, full.tokens);
  EXPECT_TRUE(std::isfinite(windowed.mean_nll));
  EXPECT_GT(windowed.mean_nll, full.mean_nll);  // less context, worse predictions
  EXPECT_LT(windowed.mean_nll, full.mean_nll + 1.0);
}

TEST(LlamaEngine, SplitsParagraphsLikePythonStripSplit) {
  EXPECT_EQ(llama::split_paragraphs("a b \n\nc\n\n\n d\n\n \n\n"), (std::vector<std::string>{"a b", "c", "d"}));
  EXPECT_EQ(llama::split_paragraphs(""), (std::vector<std::string>{}));
  EXPECT_EQ(llama::split_paragraphs("one\ntwo"), (std::vector<std::string>{"one\ntwo"}));
}

TEST(LlamaEngine, RejectsMalformedWeights) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  rankq::io::LlamaModel missing = weights();
  missing.tensors.erase("blk.3.ffn_up.weight");
  test::expect_invalid([&] { llama::Model m(missing); }, "has no tensor 'blk.3.ffn_up.weight'");
  rankq::io::LlamaModel misshaped = weights();
  misshaped.tensors.at("blk.0.attn_k.weight").shape = {64, 32};
  test::expect_invalid([&] { llama::Model m(misshaped); },
                       "'blk.0.attn_k.weight' has shape [64x32] with 2048 values, expected [32x64]");
  rankq::io::LlamaModel not_finite = weights();
  not_finite.tensors.at("blk.1.ffn_norm.weight").data[5] = std::nanf("");
  test::expect_invalid([&] { llama::Model m(not_finite); },
                       "'blk.1.ffn_norm.weight' has a non-finite value at index 5");
  not_finite = weights();
  not_finite.tensors.at("blk.1.ffn_down.weight").data[172 + 3] = INFINITY;
  test::expect_invalid([&] { llama::Model m(not_finite); },
                       "'blk.1.ffn_down.weight' has a non-finite value at row 1, column 3");
  rankq::io::LlamaModel bad_heads = weights();
  bad_heads.config.n_kv_heads = 3;
  test::expect_invalid([&] { llama::Model m(bad_heads); }, "n_heads = 8 not a multiple of n_kv_heads = 3");
}

TEST(LlamaEngine, RejectsBadArguments) {
  RANKQ_REQUIRE_DATA("stories260K.bin", "tok512.bin", "tinystories-valid-head.txt");
  test::expect_invalid([] { (void)model().forward_sequence({}); }, "'tokens' is empty");
  test::expect_invalid([] { (void)model().forward_sequence({1, 512}); }, "[1] = 512 is outside the vocabulary");
  test::expect_invalid([] { (void)model().forward_sequence(std::vector<int>(513, 5)); }, "exceeds the context of 512");
  llama::DecodeSession session(model());
  test::expect_invalid([&] { (void)session.forward_token(1, 1); }, "'pos' = 1");
  llama::PerplexityOptions options;
  options.range = {10, 5};
  test::expect_invalid([&] { (void)llama::evaluate_perplexity(model(), tokenizer(), paragraphs(), options); }, "range");
  options.range = {0, 4301};
  test::expect_invalid([&] { (void)llama::evaluate_perplexity(model(), tokenizer(), paragraphs(), options); },
                       "not inside the 4300 paragraphs");
  options.range = {0, 1};
  options.context = 1;
  test::expect_invalid([&] { (void)llama::evaluate_perplexity(model(), tokenizer(), paragraphs(), options); },
                       "context");
  test::expect_invalid([] { (void)llama::generate_greedy(model(), {}, 10); }, "'prompt' is empty");
}

TEST(LlamaEngine, EmptyWorkIsAnErrorNeverAPerplexity) {
  llama::PerplexityOptions options;
  options.range = {5, 5};
  test::expect_invalid([&] { (void)llama::evaluate_perplexity(model(), tokenizer(), paragraphs(), options); },
                       "[5, 5) has no token to score");
  test::expect_invalid([&] { (void)llama::evaluate_perplexity(model(), tokenizer(), {}, {}); }, "no token to score");
  llama::CalibrationOptions co;
  co.range = {7, 7};
  test::expect_invalid([&] { (void)llama::run_calibration(model(), tokenizer(), paragraphs(), co, [](auto&&...) {}); },
                       "[7, 7) holds no token");
  // More threads than paragraphs: only as many threads as paragraphs are started, same result.
  options.range = {0, 2};
  options.threads = 1000000;
  const auto many = llama::evaluate_perplexity(model(), tokenizer(), paragraphs(), options);
  options.threads = 1;
  EXPECT_EQ(many.mean_nll, llama::evaluate_perplexity(model(), tokenizer(), paragraphs(), options).mean_nll);
}

// seq_len comes from the file: nothing may be sized by it up front (the RoPE table covers the positions of each
// call, the decode cache the positions asked for).
TEST(LlamaEngine, HugeSeqLenCostsNothing) {
  rankq::io::LlamaModel w = weights();
  w.config.seq_len = 2147483647;
  const llama::Model huge(w);
  const std::vector<int> tokens = {1, 403, 407, 261, 378};
  EXPECT_EQ(huge.forward_sequence(tokens), model().forward_sequence(tokens));
  EXPECT_EQ(llama::generate_greedy(huge, {1}, 20), llama::generate_greedy(model(), {1}, 20));
  EXPECT_EQ(huge.make_cache(64).capacity(), 64u);
}

TEST(LlamaEngine, TextAndTokenizerFilesThatCannotBeReadAreIoErrors) {
  const std::string dir = ::testing::TempDir() + "rankq_engine_io_" + std::to_string(::getpid());
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  const std::string fifo = dir + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& p : {dir, fifo, dir + "/missing.txt"}) {
    for (int which = 0; which < 2; ++which) {
      try {
        if (which == 0) (void)llama::load_paragraphs(p);
        else (void)llama::Tokenizer::from_file(p, 512);
        ADD_FAILURE() << "expected io_error for " << p;
      } catch (const rankq::io::io_error& e) {
        EXPECT_NE(std::string(e.what()).find("'" + p + "'"), std::string::npos) << e.what();
      }
    }
  }
  ::unlink(fifo.c_str());
  ::rmdir(dir.c_str());
}

}  // namespace
