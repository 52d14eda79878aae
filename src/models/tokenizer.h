// Tokenizers of the text encoder: CLIP's byte-level BPE (openai/CLIP) and a word-level vocabulary
// for small datasets, plus the batch function that frames, truncates and pads token ids.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace runner::models {

constexpr int64_t kClipContextLength = 77;
constexpr int64_t kClipNumMerges = 48894;  // 0-based lines 1..48894 of bpe_simple_vocab_16e6.txt.gz
constexpr int64_t kClipVocabSize = 49408;

// Maps a caption to token ids. Implementations are immutable after construction and safe to
// call from several threads at once.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Ids of `text` (UTF-8) framed as [sot, ids..., eot]; not truncated. Bytes that are not valid
  // UTF-8 read as U+FFFD.
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int64_t sot_id() const = 0;
  // The largest id: the text encoder pools its output at the position of the largest id.
  virtual int64_t eot_id() const = 0;
  virtual std::string kind() const = 0;  // "clip_bpe" or "word"
};

// CLIP's text cleaning, UTF-8 in and out: HTML-unescaped twice, whitespace runs collapsed to one
// space, stripped, lower-cased. Entities follow Python's html.unescape for: decimal and hex
// numeric references (with or without ';', including its Windows-1252 and invalid code point
// rules), and the named entities amp lt gt quot apos, the 96 Latin-1 names (nbsp ... yuml), the
// HTML 4 special and typographic names (OElig ... euro, ndash, hellip, trade, ...) and a few
// symbols (arrows, card suits, minus, le, ge, ne, infin, asymp). Other HTML5 names stay as text.
// Lower-casing is Unicode-aware (utf8proc simple mapping, plus Python's İ -> i̇ and final sigma).
// With split_words this reproduces CLIP's Python tokenizer minus ftfy (text is taken as given)
// on every code point assigned in Unicode 14; code points newer than utf8proc's Unicode version
// read as unassigned.
std::string clean_text(const std::string& text);

// Pieces of cleaned text by CLIP's pattern
// <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// (leftmost alternative first, as Python's `regex`), UTF-8 in and out.
std::vector<std::string> split_words(const std::string& cleaned);

// Reads CLIP's gzip-compressed merges file: the first line is a header, the next `num_merges`
// lines are merges "a b" in rank order. Vocabulary: 256 byte symbols (GPT-2 byte->unicode
// order), the same with "</w>", one token per merge, then <|startoftext|> and <|endoftext|>
// (49406 and 49407 for the real file, vocab_size 512 + num_merges + 2). Encoding caches the ids
// of up to 2^18 distinct pieces (thread-safe); later pieces are merged without being stored.
// Throws IoError naming the file when it is missing, unreadable, not gzip, truncated or corrupt,
// has fewer than `num_merges` merge lines, or a merge line is not two symbols; ConfigError for
// num_merges < 0.
std::unique_ptr<Tokenizer> load_clip_bpe(const std::string& vocab_gz_path,
                                         int64_t num_merges = kClipNumMerges);

// The tokenizer a checkpoint's text encoder was trained with: its word vocabulary when `extras`
// (the checkpoint's extras) hold one under "tokenizer", else CLIP's BPE from `vocab_file` (released
// MERU/CLIP checkpoints). ConfigError naming `source` when neither is available.
std::shared_ptr<const Tokenizer> checkpoint_tokenizer(const std::map<std::string, std::string>& extras,
                                                      const std::string& vocab_file, const std::string& source);

// Word-level vocabulary: pieces of clean_text/split_words. Ids: 0 is padding and never a word,
// 1 = unknown, words from 2, then sot = V-2, eot = V-1. The pieces <|startoftext|> and
// <|endoftext|> in a text map to sot and eot.
class WordTokenizer final : public Tokenizer {
 public:
  static constexpr int64_t kPadId = 0;
  static constexpr int64_t kUnknownId = 1;
  static constexpr int64_t kFirstWordId = 2;

  // Words in id order (id = kFirstWordId + index). Throws ConfigError naming the index and word
  // when a word is empty, duplicated, a special token, or not one piece of split_words(clean_text).
  explicit WordTokenizer(std::vector<std::string> words);

  // Vocabulary of the pieces of `texts` seen at least `min_count` times, most frequent first,
  // ties in byte order (deterministic). Throws ConfigError for min_count < 1.
  static WordTokenizer build(const std::vector<std::string>& texts, int64_t min_count = 1);

  std::vector<int64_t> encode(const std::string& text) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(words_.size()) + 4; }
  int64_t sot_id() const override { return vocab_size() - 2; }
  int64_t eot_id() const override { return vocab_size() - 1; }
  std::string kind() const override { return "word"; }
  const std::vector<std::string>& words() const { return words_; }

  // Versioned text form a checkpoint can embed: "hac-word-tokenizer 1", "words N", then one word
  // per line, each line ending in '\n'.
  std::string to_text() const;
  // Inverse of to_text. Throws IoError naming `source`, the line and its content when the text
  // is malformed (header, count, a bad or duplicated word, missing or extra lines).
  static WordTokenizer from_text(const std::string& text, const std::string& source = "<text>");

  // Writes to_text() to `path` atomically (a temporary file beside it, then rename). Throws
  // IoError naming the file.
  void save(const std::string& path) const;
  // Reads a file written by save. Throws IoError naming the file (and line, as from_text).
  static WordTokenizer load(const std::string& path);

 private:
  std::vector<std::string> words_;
  std::unordered_map<std::string, int64_t> ids_;
};

// Batch of framed ids: int64 [N, L] on CPU, L = min(context_length, longest framed sequence)
// ([0, 0] for no texts). A sequence longer than context_length keeps its first
// context_length-1 tokens, then the end token; rows are right-padded with 0. Throws ConfigError
// for context_length < 2.
at::Tensor tokenize(const Tokenizer& tok, const std::vector<std::string>& texts,
                    int64_t context_length = kClipContextLength);

}  // namespace runner::models
