// Tokenizers: CLIP BPE against the reference ids (clip_tokenizer.json), a tiny merges file with
// ids exact by construction, text cleaning and splitting, batch framing, the word vocabulary.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/tokenizer.h"

namespace runner::models {
namespace {

using Ids = std::vector<int64_t>;

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "hac_tok_" + std::to_string(::getpid()) + "_" + name;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_gz(const std::string& path, const std::string& text) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  const auto size = static_cast<unsigned>(text.size());
  ASSERT_EQ(gzwrite(f, text.data(), size), static_cast<int>(size));
  ASSERT_EQ(gzclose(f), Z_OK);
}

// Runs `f`, expects an exception of type E whose message contains every one of `parts`.
template <typename E>
void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning " << parts.front();
  } catch (const E& e) {
    for (const std::string& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "\"" << p << "\" not in: " << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// CLIP BPE against the reference implementation.

TEST(ClipBpeGolden, MatchesReferenceIds) {
  const char* vocab = std::getenv("HAC_CLIP_BPE_VOCAB");
  ASSERT_NE(vocab, nullptr) << "HAC_CLIP_BPE_VOCAB is not set (CTest sets it to the vocabulary)";
  const auto tok = load_clip_bpe(vocab);
  EXPECT_EQ(tok->vocab_size(), kClipVocabSize);
  EXPECT_EQ(tok->sot_id(), 49406);
  EXPECT_EQ(tok->eot_id(), 49407);
  EXPECT_EQ(tok->kind(), "clip_bpe");

  std::ifstream in(std::string(RUNNER_GOLDEN_DIR) + "/clip_tokenizer.json");
  ASSERT_TRUE(in.good()) << "cannot open clip_tokenizer.json in " << RUNNER_GOLDEN_DIR;
  const nlohmann::json golden = nlohmann::json::parse(in);
  const auto texts = golden.at("texts").get<std::vector<std::string>>();
  const auto ids = golden.at("ids").get<std::vector<Ids>>();
  ASSERT_EQ(texts.size(), ids.size());
  ASSERT_FALSE(texts.empty());
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(tok->encode(texts[i]), ids[i]) << texts[i];

  // The batch: right-padded with 0 to the longest, end token at the largest id of each row.
  const at::Tensor batch = tokenize(*tok, texts, kClipContextLength);
  size_t longest = 0;
  for (const Ids& row : ids) longest = std::max(longest, row.size());
  const auto n = static_cast<int64_t>(texts.size()), width = static_cast<int64_t>(longest);
  ASSERT_EQ(batch.sizes(), (at::IntArrayRef{n, width}));
  for (size_t i = 0; i < ids.size(); ++i) {
    Ids row(ids[i]);
    row.resize(longest, 0);
    const at::Tensor got = batch[static_cast<int64_t>(i)].contiguous();
    EXPECT_EQ(Ids(got.data_ptr<int64_t>(), got.data_ptr<int64_t>() + longest), row);
    EXPECT_EQ(got.argmax().item<int64_t>(), static_cast<int64_t>(ids[i].size()) - 1);
  }
}

// ---------------------------------------------------------------------------------------------
// A tiny merges file: byte ids follow the GPT-2 table order ('!'..'~' are 0..93, so 'e' 68,
// 'h' 71, 'l' 75, 'o' 78; "x</w>" is id(x) + 256), merges are 512 + rank, sot 517, eot 518.

constexpr int64_t kH = 71, kE = 68, kL = 75, kO = 78, kW = 256;
constexpr int64_t kHe = 512, kLl = 513, kHelloW = 515, kLoW = 516, kSot = 517, kEot = 518;
const char* kTinyMerges = "#version: test\nh e\nl l\nhe ll\nhell o</w>\nl o</w>\n";

class ClipBpeTiny : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = temp_path("tiny_merges.txt.gz");
    write_gz(path_, kTinyMerges);
    tok_ = load_clip_bpe(path_, /*num_merges=*/5).release();
  }
  static void TearDownTestSuite() {
    delete tok_;
    std::remove(path_.c_str());
  }
  static Ids enc(const std::string& text) { return tok_->encode(text); }
  static inline std::string path_;
  static inline Tokenizer* tok_ = nullptr;
};

TEST_F(ClipBpeTiny, VocabularyLayout) {
  EXPECT_EQ(tok_->vocab_size(), 519);
  EXPECT_EQ(tok_->sot_id(), kSot);
  EXPECT_EQ(tok_->eot_id(), kEot);
  EXPECT_EQ(enc(""), (Ids{kSot, kEot}));
}

TEST_F(ClipBpeTiny, MergesByLowestRankUntilNoneApplies) {
  EXPECT_EQ(enc("hello"), (Ids{kSot, kHelloW, kEot}));       // h e -> l l -> he ll -> hell o</w>
  EXPECT_EQ(enc("llo"), (Ids{kSot, kLl, kO + kW, kEot}));     // l l (rank 1) before l o</w> (4)
  EXPECT_EQ(enc("lo"), (Ids{kSot, kLoW, kEot}));
  EXPECT_EQ(enc("lol"), (Ids{kSot, kL, kO, kL + kW, kEot}));  // "o l</w>" has no rank
  // Every occurrence of the pair merges, but "e</w>" is not "e".
  EXPECT_EQ(enc("hehe"), (Ids{kSot, kHe, kH, kE + kW, kEot}));
  EXPECT_EQ(enc("he"), (Ids{kSot, kH, kE + kW, kEot}));
  EXPECT_EQ(enc("hell"), (Ids{kSot, kHe, kL, kL + kW, kEot}));
  EXPECT_EQ(enc("Hello hello"), (Ids{kSot, kHelloW, kHelloW, kEot}));  // cached the second time
}

TEST_F(ClipBpeTiny, ByteSymbolsAndEndOfWord) {
  EXPECT_EQ(enc("a"), (Ids{kSot, 64 + kW, kEot}));
  EXPECT_EQ(enc("!"), (Ids{kSot, 0 + kW, kEot}));
  EXPECT_EQ(enc("~"), (Ids{kSot, 93 + kW, kEot}));
  // U+00E9 is C3 A9: 0xC3 is 106 + (0xC3 - 0xAE), 0xA9 is 94 + (0xA9 - 0xA1).
  EXPECT_EQ(enc("\xC3\xA9"), (Ids{kSot, 127, 102 + kW, kEot}));
  // U+00AD (soft hyphen, punctuation) is C2 AD; 0xAD is the last of the remapped bytes, 255.
  EXPECT_EQ(enc("\xC2\xAD"), (Ids{kSot, 126, 255 + kW, kEot}));
  // U+0001 is a remapped byte: 0..32 come first among them, at 188.
  EXPECT_EQ(enc(std::string("\x01", 1)), (Ids{kSot, 189 + kW, kEot}));
}

TEST_F(ClipBpeTiny, SpecialTokensMapToTheirIds) {
  EXPECT_EQ(enc("<|startoftext|>hello<|endoftext|>"), (Ids{kSot, kSot, kHelloW, kEot, kEot}));
  EXPECT_EQ(enc("<|ENDOFTEXT|>"), (Ids{kSot, kEot, kEot}));  // lower-cased first
  // Inside a punctuation run the special spelling is ordinary text.
  const Ids ids = enc(".<|endoftext|>");  // ".<|", "endoftext", "|>"
  EXPECT_EQ(ids.size(), 2u + 3u + 9u + 2u);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), kEot), 1);
}

TEST_F(ClipBpeTiny, CleaningBeforeSplitting) {
  // "&amp;amp;" unescapes twice to "&" (byte 38 -> id 5); whitespace and case do not matter.
  EXPECT_EQ(enc("  HELLO&amp;amp;\t\n "), (Ids{kSot, kHelloW, 5 + kW, kEot}));
  EXPECT_EQ(enc("he&#108;&#x6C;o"), enc("hello"));
  EXPECT_EQ(enc("hello&nbsp;&nbsp;hello"), enc("hello hello"));
}

TEST_F(ClipBpeTiny, AnyBytesGiveFramedIdsInRange) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 500; ++trial) {
    std::string text(rng() % 40, '\0');
    for (char& c : text) c = static_cast<char>(rng() % 256);
    const Ids ids = enc(text);
    ASSERT_GE(ids.size(), 2u);
    EXPECT_EQ(ids.front(), kSot);
    EXPECT_EQ(ids.back(), kEot);
    for (int64_t id : ids) ASSERT_TRUE(id >= 0 && id < tok_->vocab_size()) << id;
  }
}

TEST_F(ClipBpeTiny, ConcurrentEncodingAgrees) {
  const std::vector<std::string> texts = {"hello llo", "lol lo he", "hehe hell", "a b c d e"};
  std::vector<Ids> expected;
  for (const auto& t : texts) expected.push_back(enc(t + " x"));  // "x" is uncached in the threads
  std::vector<int> failures(8, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 200; ++rep)
        for (size_t i = 0; i < texts.size(); ++i)
          failures[static_cast<size_t>(t)] += enc(texts[i] + " x") != expected[i];
    });
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

TEST(ClipBpeLoad, BadFilesThrowIoErrorNamingThePath) {
  const std::string missing = temp_path("missing.txt.gz");
  expect_error<IoError>([&] { load_clip_bpe(missing); }, {missing, "cannot open"});

  const std::string plain = temp_path("plain.txt.gz");
  write_file(plain, kTinyMerges);
  expect_error<IoError>([&] { load_clip_bpe(plain, 5); }, {plain, "not a gzip file"});

  std::string merges = "#version\n";
  for (int i = 0; i < 2000; ++i) merges += "a" + std::to_string(i) + " b\n";
  const std::string good = temp_path("good.txt.gz");
  write_gz(good, merges);
  EXPECT_EQ(load_clip_bpe(good, 2000)->vocab_size(), 512 + 2000 + 2);
  const std::string gz = read_file(good);

  const std::string truncated = temp_path("truncated.txt.gz");
  write_file(truncated, gz.substr(0, gz.size() / 2));
  expect_error<IoError>([&] { load_clip_bpe(truncated, 10); }, {truncated, "truncated or corrupt"});

  std::string flipped = gz;
  flipped[flipped.size() - 6] = static_cast<char>(flipped[flipped.size() - 6] ^ 0x5A);  // CRC-32
  const std::string corrupt = temp_path("corrupt.txt.gz");
  write_file(corrupt, flipped);
  expect_error<IoError>([&] { load_clip_bpe(corrupt, 10); }, {corrupt});

  expect_error<IoError>([&] { load_clip_bpe(good); }, {good, "2000 merge lines", "48894"});
  expect_error<IoError>([&] { load_clip_bpe(::testing::TempDir()); }, {::testing::TempDir()});
  expect_error<ConfigError>([&] { load_clip_bpe(good, -1); }, {"num_merges"});

  const std::string bad_line = temp_path("bad_line.txt.gz");
  write_gz(bad_line, "#version\nh e\na b c\n");
  expect_error<IoError>([&] { load_clip_bpe(bad_line, 2); }, {bad_line, "line 3", "a b c"});
  for (const auto& p : {plain, good, truncated, corrupt, bad_line}) std::remove(p.c_str());
}

// ---------------------------------------------------------------------------------------------
// Cleaning and splitting (checked against Python's html.unescape, str.lower and `regex`).

TEST(TokenizerCleanText, HtmlEntitiesUnescapedTwice) {
  EXPECT_EQ(clean_text("&amp;amp;"), "&");
  EXPECT_EQ(clean_text("&amp;amp;amp;"), "&amp;");
  EXPECT_EQ(clean_text("&lt;b&gt; &quot;x&quot; &apos;y&#39; &#x27;"), "<b> \"x\" 'y' '");
  EXPECT_EQ(clean_text("&#65;&#x42;&#X43"), "abc");
  EXPECT_EQ(clean_text("caf&eacute; &Eacute;T&Eacute; 5&deg; &copy &hellip; &mdash; &euro;"),
            "caf\xC3\xA9 \xC3\xA9t\xC3\xA9 5\xC2\xB0 \xC2\xA9 "
            "\xE2\x80\xA6 \xE2\x80\x94 \xE2\x82\xAC");
  EXPECT_EQ(clean_text("&ampfoo &lt3"), "&foo <3");  // legacy names match without ';'
  EXPECT_EQ(clean_text("&hellipx &bogus; & &# &#x;"), "&hellipx &bogus; & &# &#x;");
  // Windows-1252 meaning, kept as is, U+FFFD.
  EXPECT_EQ(clean_text("&#150;&#129;&#0;"), "\xE2\x80\x93\xC2\x81\xEF\xBF\xBD");
  EXPECT_EQ(clean_text("a&#1;b&#xD800;&#99999999999;"), "ab\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(TokenizerCleanText, WhitespaceCollapsedAndStripped) {
  EXPECT_EQ(clean_text("  a \t\n b\r\n\n c  "), "a b c");
  EXPECT_EQ(clean_text("a\xC2\xA0\xE3\x80\x80" "b&nbsp;c"), "a b c");  // NBSP, ideographic space
  EXPECT_EQ(clean_text(" \x1c a\x1c b \x1f"), "a\x1c b");  // \x1c strips at the ends only
  EXPECT_EQ(clean_text(" \t "), "");
}

TEST(TokenizerCleanText, UnicodeLowerCase) {
  EXPECT_EQ(clean_text("HeLLo W\xC3\x96RLD \xC3\x84\xC3\x9C"),
            "hello w\xC3\xB6rld \xC3\xA4\xC3\xBC");
  EXPECT_EQ(clean_text("\xD0\x9C\xD0\x98\xD0\xA0"), "\xD0\xBC\xD0\xB8\xD1\x80");  // Cyrillic
  // Final sigma: ΟΔΟΣ -> οδος, Σ alone stays σ; İ lowers to i + combining dot.
  EXPECT_EQ(clean_text("\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3"), "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82");
  EXPECT_EQ(clean_text("\xCE\xA3"), "\xCF\x83");
  EXPECT_EQ(clean_text("\xC4\xB0"), "i\xCC\x87");
  EXPECT_EQ(clean_text("a\xFF" "b"), "a\xEF\xBF\xBD" "b");  // invalid UTF-8 reads as U+FFFD
}

TEST(TokenizerSplitWords, ClipPattern) {
  using W = std::vector<std::string>;
  EXPECT_EQ(split_words("it's a dog's life"), (W{"it", "'s", "a", "dog", "'s", "life"}));
  EXPECT_EQ(split_words("we're i'll you'd i'm they've can't"),
            (W{"we", "'re", "i", "'ll", "you", "'d", "i", "'m", "they", "'ve", "can", "'t"}));
  EXPECT_EQ(split_words("abc123 4.5"), (W{"abc", "1", "2", "3", "4", ".", "5"}));
  EXPECT_EQ(split_words("wow!!! ''s :-)"), (W{"wow", "!!!", "''", "s", ":-)"}));
  EXPECT_EQ(split_words("<|startoftext|>a<|endoftext|>"),
            (W{"<|startoftext|>", "a", "<|endoftext|>"}));
  EXPECT_EQ(split_words("x.<|endoftext|>"), (W{"x", ".<|", "endoftext", "|>"}));
  EXPECT_EQ(split_words("caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC"),
            (W{"caf\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC"}));
  // Vulgar fraction one half, Roman numeral one: a number each.
  EXPECT_EQ(split_words("\xC2\xBD\xE2\x85\xA0"), (W{"\xC2\xBD", "\xE2\x85\xA0"}));
  EXPECT_TRUE(split_words("").empty());
}

// ---------------------------------------------------------------------------------------------
// Batch framing.

TEST(TokenizerBatch, PadsToLongestAndTruncatesKeepingEnd) {
  const WordTokenizer tok({"hello", "lol"});  // ids 2, 3; sot 4, eot 5
  at::Tensor b = tokenize(tok, {"hello", "lol lol hello"}, 77);
  EXPECT_EQ(b.scalar_type(), at::kLong);
  EXPECT_TRUE(at::equal(b, at::tensor({4, 2, 5, 0, 0, 4, 3, 3, 2, 5}, at::kLong).view({2, 5})));

  b = tokenize(tok, {"hello", "lol lol hello"}, 4);  // 5 tokens > 4: first 3, then the end token
  EXPECT_TRUE(at::equal(b, at::tensor({4, 2, 5, 0, 4, 3, 3, 5}, at::kLong).view({2, 4})));
  b = tokenize(tok, {"hello hello", "lol"}, 4);  // exactly the context: unchanged
  EXPECT_TRUE(at::equal(b, at::tensor({4, 2, 2, 5, 4, 3, 5, 0}, at::kLong).view({2, 4})));
  b = tokenize(tok, {"hello lol hello"}, 2);
  EXPECT_TRUE(at::equal(b, at::tensor({4, 5}, at::kLong).view({1, 2})));

  EXPECT_EQ(tokenize(tok, {}, 77).sizes(), (at::IntArrayRef{0, 0}));
  expect_error<ConfigError>([&] { tokenize(tok, {"x"}, 1); }, {"context_length", "1"});
}

// ---------------------------------------------------------------------------------------------
// Word vocabulary.

TEST(WordTokenizer, BuildCountsAndOrdersDeterministically) {
  const std::vector<std::string> texts = {"A cat.", "a DOG", "the cat's hat"};
  const WordTokenizer tok = WordTokenizer::build(texts);
  // a, cat twice; then once each in byte order.
  EXPECT_EQ(tok.words(), (std::vector<std::string>{"a", "cat", "'s", ".", "dog", "hat", "the"}));
  EXPECT_EQ(tok.vocab_size(), 11);
  EXPECT_EQ(tok.sot_id(), 9);
  EXPECT_EQ(tok.eot_id(), 10);
  EXPECT_EQ(tok.kind(), "word");
  EXPECT_EQ(tok.encode("A cat, a bird"), (Ids{9, 2, 3, WordTokenizer::kUnknownId, 2, 1, 10}));
  EXPECT_EQ(tok.encode("<|startoftext|>the<|endoftext|>"), (Ids{9, 9, 8, 10, 10}));
  for (int64_t id : tok.encode("the cat's hat. a dog")) EXPECT_NE(id, WordTokenizer::kPadId);

  EXPECT_EQ(WordTokenizer::build(texts, 2).words(), (std::vector<std::string>{"a", "cat"}));
  EXPECT_EQ(WordTokenizer::build({"x <|endoftext|>"}).words(), (std::vector<std::string>{"x"}));
  const WordTokenizer empty({});
  EXPECT_EQ(empty.vocab_size(), 4);
  EXPECT_EQ(empty.encode("anything"), (Ids{2, 1, 3}));
  expect_error<ConfigError>([&] { WordTokenizer::build(texts, 0); }, {"min_count = 0"});
}

TEST(WordTokenizer, RejectsWordsThatCannotBeTokens) {
  for (const char* w : {"", "two words", "Upper", "ab1", "<|endoftext|>", " a"})
    expect_error<ConfigError>([&] { WordTokenizer({"ok", w}); }, {"word 1"});
  expect_error<ConfigError>([&] { WordTokenizer({"ok", "ok"}); }, {"duplicate of word 0"});
}

TEST(WordTokenizer, RoundTripThroughTextAndFile) {
  const WordTokenizer tok =
      WordTokenizer::build({"a photo of a dog", "caf\xC3\xA9 \xE6\x97\xA5! 'll 7"});
  const std::string text = tok.to_text();
  EXPECT_EQ(text.rfind("hac-word-tokenizer 1\nwords 9\n", 0), 0u) << text;
  const WordTokenizer back = WordTokenizer::from_text(text);
  EXPECT_EQ(back.words(), tok.words());
  EXPECT_EQ(back.encode("a dog, caf\xC3\xA9!"), tok.encode("a dog, caf\xC3\xA9!"));

  const std::string path = temp_path("words.txt");
  tok.save(path);
  EXPECT_EQ(read_file(path), text);
  EXPECT_EQ(WordTokenizer::load(path).words(), tok.words());
  WordTokenizer({"z"}).save(path);  // overwrites
  EXPECT_EQ(WordTokenizer::load(path).words(), std::vector<std::string>{"z"});
  EXPECT_FALSE(std::ifstream(path + ".tmp." + std::to_string(::getpid())).good());
  std::remove(path.c_str());

  expect_error<IoError>([&] { WordTokenizer::load(path); }, {path, "cannot open"});
  expect_error<IoError>([&] { WordTokenizer({"z"}).save(temp_path("no_dir/x.txt")); },
                        {"no_dir/x.txt"});
}

TEST(WordTokenizer, MalformedTextNamesTheLine) {
  const std::string h = "hac-word-tokenizer 1\n";
  auto parse = [](const std::string& t) {
    return [t] { WordTokenizer::from_text(t, "ckpt.pt:tokenizer"); };
  };
  expect_error<IoError>(parse("hac-word-tokenizer 2\nwords 0\n"),
                        {"ckpt.pt:tokenizer", "line 1", "version"});
  expect_error<IoError>(parse(""), {"line 1"});
  expect_error<IoError>(parse(h + "count 1\na\n"), {"line 2", "words N"});
  expect_error<IoError>(parse(h + "words -1\n"), {"line 2"});
  expect_error<IoError>(parse(h + "words 1x\na\n"), {"line 2"});
  expect_error<IoError>(parse(h + "words 3\na\nb\n"), {"expected 3 words", "found 2"});
  expect_error<IoError>(parse(h + "words 1\na\nb\n"), {"expected 1 words", "found 2"});
  expect_error<IoError>(parse(h + "words 3\na\nB c\nd\n"), {"line 4", "\"B c\""});
  expect_error<IoError>(parse(h + "words 3\na\nb\na\n"), {"line 5", "duplicate of line 3"});
  expect_error<IoError>(parse(h + "words 1\na"), {"line 3", "newline"});
  expect_error<IoError>(parse(h + "words 1\n\n"), {"line 3", "empty"});
  EXPECT_TRUE(WordTokenizer::from_text(h + "words 0\n").words().empty());

  const std::string path = temp_path("bad_words.txt");
  write_file(path, h + "words 2\nok\nNOT OK\n");
  expect_error<IoError>([&] { WordTokenizer::load(path); }, {path, "line 4"});
  std::remove(path.c_str());
}

}  // namespace
}  // namespace runner::models
