// Tokenizers: CLIP's byte-level BPE (openai/CLIP simple_tokenizer), the word-level vocabulary, and batch framing.
#include "models/tokenizer.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <unistd.h>
#include <utf8proc.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <shared_mutex>
#include <sstream>
#include <utility>

#include "core/error.h"
#include "models/tokenizer_text.h"

namespace runner::models {
namespace {

using namespace text_detail;  // NOLINT: the tokenizers are written in terms of these helpers
constexpr size_t kMaxCachedPieces = size_t{1} << 18;


// [sot, ids of each piece of clean(text), eot]; `append_ids(utf8_piece, ids)` handles the
// pieces that are not special tokens.
template <typename AppendIds>
std::vector<int64_t> encode_framed(const std::string& text, int64_t sot, int64_t eot,
                                   AppendIds&& append_ids) {
  const std::u32string cleaned = clean_codepoints(text);
  std::vector<int64_t> ids{sot};
  for (const Piece& p : split_pieces(cleaned)) {
    if (p.special != Special::kNone)
      ids.push_back(p.special == Special::kSot ? sot : eot);
    else
      append_ids(encode_utf8(cleaned.data() + p.begin, cleaned.data() + p.end), ids);
  }
  ids.push_back(eot);
  return ids;
}

// ---- CLIP BPE.

// GPT-2's reversible byte -> code point table, in the order CLIP lists the byte symbols: the
// printable bytes map to themselves, the other 68 to U+0100 onwards.
std::vector<std::pair<uint8_t, char32_t>> byte_symbols() {
  std::vector<std::pair<uint8_t, char32_t>> table;
  auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  for (int b = 0; b < 256; ++b)
    if (printable(b)) table.emplace_back(static_cast<uint8_t>(b), static_cast<char32_t>(b));
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b)
    if (!printable(b)) table.emplace_back(static_cast<uint8_t>(b), next++);
  return table;
}

// Whole content of a gzip file; IoError naming the path for any failure, including a file that
// is not gzip (zlib would pass it through) and a truncated stream (zlib reports Z_BUF_ERROR).
std::string read_gzip(const std::string& path) {
  errno = 0;
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr)
    throw IoError(path + ": cannot open (" + (errno != 0 ? std::strerror(errno) : "out of memory") +
                  "); hint: the file ships with openai/CLIP as clip/bpe_simple_vocab_16e6.txt.gz");
  std::unique_ptr<gzFile_s, int (*)(gzFile)> guard(f, gzclose_r);
  gzbuffer(f, 1 << 17);
  std::string data;
  std::vector<char> buf(1 << 16);
  auto fail = [&](const std::string& what) {
    int errnum = Z_OK;
    const char* msg = gzerror(f, &errnum);
    std::string detail = errnum == Z_ERRNO ? std::strerror(errno) : (msg != nullptr ? msg : "");
    return IoError(path + ": " + what + " (" + detail + ")");
  };
  for (;;) {
    const int n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()));
    if (n < 0) throw fail("cannot read or decompress");
    if (n == 0) break;
    data.append(buf.data(), static_cast<size_t>(n));
  }
  int errnum = Z_OK;
  gzerror(f, &errnum);
  if (errnum != Z_OK) throw fail("truncated or corrupt gzip stream");
  if (gzdirect(f) != 0)
    throw IoError(path + ": not a gzip file; hint: pass CLIP's bpe_simple_vocab_16e6.txt.gz as is");
  return data;
}

class ClipBpeTokenizer final : public Tokenizer {
 public:
  ClipBpeTokenizer(const std::string& path, const std::string& data, int64_t num_merges) {
    const auto symbols = byte_symbols();
    std::vector<std::string> tokens;
    tokens.reserve(static_cast<size_t>(512 + num_merges + 2));
    for (const auto& [byte, cp] : symbols) tokens.push_back(encode_utf8(&cp, &cp + 1));
    for (size_t b = 0; b < 256; ++b) tokens.push_back(tokens[b] + "</w>");

    std::vector<std::pair<std::string, std::string>> merges;
    merges.reserve(static_cast<size_t>(num_merges));
    size_t pos = data.find('\n');  // the first line is a version header
    int64_t line_no = 1;
    while (static_cast<int64_t>(merges.size()) < num_merges) {
      if (pos == std::string::npos || pos + 1 >= data.size())
        throw IoError(path + ": has " + std::to_string(merges.size()) +
                      " merge lines, expected " + std::to_string(num_merges) +
                      "; hint: is it CLIP's bpe_simple_vocab_16e6.txt.gz?");
      const size_t end = std::min(data.find('\n', pos + 1), data.size());
      std::string line = data.substr(pos + 1, end - pos - 1);
      pos = end < data.size() ? end : std::string::npos;
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      std::istringstream fields(line);
      std::string a, b, extra;
      if (!(fields >> a >> b) || (fields >> extra))
        throw IoError(path + ": line " + std::to_string(line_no) +
                      ": expected a merge \"a b\", got \"" + line.substr(0, 80) + "\"");
      tokens.push_back(a + b);
      merges.emplace_back(std::move(a), std::move(b));
    }
    tokens.push_back(kSotText);
    tokens.push_back(kEotText);
    sot_id_ = static_cast<int64_t>(tokens.size()) - 2;
    eot_id_ = sot_id_ + 1;
    vocab_size_ = eot_id_ + 1;

    // Ids are assigned as Python's dict(zip(vocab, range)): a repeated token keeps its last id,
    // and ranks as dict(zip(merges, ...)): a repeated pair keeps its last rank. Working on these
    // canonical ids is then the same as CLIP's merging of strings.
    std::unordered_map<std::string, int32_t> id_of;
    id_of.reserve(tokens.size());
    for (size_t k = 0; k < tokens.size(); ++k) id_of[tokens[k]] = static_cast<int32_t>(k);
    for (size_t b = 0; b < 256; ++b) {
      byte_id_[symbols[b].first] = id_of.at(tokens[b]);
      byte_end_id_[symbols[b].first] = id_of.at(tokens[b + 256]);
    }
    merged_id_.resize(merges.size());
    for (size_t r = 0; r < merges.size(); ++r) {
      merged_id_[r] = id_of.at(merges[r].first + merges[r].second);
      auto a = id_of.find(merges[r].first), b = id_of.find(merges[r].second);
      if (a != id_of.end() && b != id_of.end())
        rank_[pair_key(a->second, b->second)] = static_cast<int32_t>(r);
    }
  }

  std::vector<int64_t> encode(const std::string& text) const override {
    return encode_framed(text, sot_id_, eot_id_,
                         [this](const std::string& bytes, std::vector<int64_t>& ids) {
                           append_piece(bytes, ids);
                         });
  }
  int64_t vocab_size() const override { return vocab_size_; }
  int64_t sot_id() const override { return sot_id_; }
  int64_t eot_id() const override { return eot_id_; }
  std::string kind() const override { return "clip_bpe"; }

 private:
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  void append_piece(const std::string& bytes, std::vector<int64_t>& ids) const {
    {
      std::shared_lock<std::shared_mutex> lock(cache_mutex_);
      auto it = cache_.find(bytes);
      if (it != cache_.end()) {
        ids.insert(ids.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> word = merge(bytes);
    ids.insert(ids.end(), word.begin(), word.end());
    std::unique_lock<std::shared_mutex> lock(cache_mutex_);
    if (cache_.size() < kMaxCachedPieces) cache_.emplace(bytes, std::move(word));
  }

  // CLIP's bpe(): byte symbols, the last with "</w>"; repeatedly merge every occurrence (left to
  // right, non-overlapping) of the adjacent pair of lowest rank until no pair has a rank.
  std::vector<int32_t> merge(const std::string& bytes) const {
    std::vector<int32_t> word(bytes.size());
    for (size_t k = 0; k < bytes.size(); ++k) word[k] = byte_id_[static_cast<uint8_t>(bytes[k])];
    word.back() = byte_end_id_[static_cast<uint8_t>(bytes.back())];
    std::vector<int32_t> next;
    while (word.size() > 1) {
      int32_t best = INT32_MAX, first = 0, second = 0;
      for (size_t k = 0; k + 1 < word.size(); ++k) {
        auto it = rank_.find(pair_key(word[k], word[k + 1]));
        if (it != rank_.end() && it->second < best) {
          best = it->second;
          first = word[k];
          second = word[k + 1];
        }
      }
      if (best == INT32_MAX) break;
      next.clear();
      for (size_t k = 0; k < word.size(); ++k) {
        if (word[k] == first && k + 1 < word.size() && word[k + 1] == second) {
          next.push_back(merged_id_[static_cast<size_t>(best)]);
          ++k;
        } else {
          next.push_back(word[k]);
        }
      }
      word.swap(next);
    }
    return word;
  }

  int64_t vocab_size_ = 0, sot_id_ = 0, eot_id_ = 0;
  std::array<int32_t, 256> byte_id_{}, byte_end_id_{};
  std::unordered_map<uint64_t, int32_t> rank_;  // (left id, right id) -> merge rank
  std::vector<int32_t> merged_id_;              // merge rank -> id of the merged token
  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

// ---- Word vocabulary helpers.

constexpr const char* kWordHeader = "hac-word-tokenizer 1";

// Why `word` cannot be a vocabulary entry, or "" when it can.
std::string word_problem(const std::string& word) {
  if (word.empty()) return "is empty";
  if (word == kSotText || word == kEotText) return "is a special token";
  const std::u32string cleaned = clean_codepoints(word);
  const auto pieces = split_pieces(cleaned);
  if (pieces.size() != 1 || pieces[0].begin != 0 || pieces[0].end != cleaned.size() ||
      encode_utf8(cleaned.data(), cleaned.data() + cleaned.size()) != word)
    return "is not one cleaned piece of the split pattern (lower-case, no spaces, letters or "
           "digits or punctuation alone)";
  return {};
}

}  // namespace

std::string clean_text(const std::string& text) {
  const std::u32string s = clean_codepoints(text);
  return encode_utf8(s.data(), s.data() + s.size());
}

std::vector<std::string> split_words(const std::string& cleaned) {
  const std::u32string s = decode_utf8(cleaned);
  std::vector<std::string> out;
  for (const Piece& p : split_pieces(s))
    out.push_back(encode_utf8(s.data() + p.begin, s.data() + p.end));
  return out;
}

std::unique_ptr<Tokenizer> load_clip_bpe(const std::string& vocab_gz_path, int64_t num_merges) {
  RUNNER_CHECK(num_merges >= 0, ConfigError,
               "load_clip_bpe: num_merges = " + std::to_string(num_merges) + " must be >= 0");
  return std::make_unique<ClipBpeTokenizer>(vocab_gz_path, read_gzip(vocab_gz_path), num_merges);
}

// ---- WordTokenizer.

WordTokenizer::WordTokenizer(std::vector<std::string> words) : words_(std::move(words)) {
  ids_.reserve(words_.size());
  for (size_t k = 0; k < words_.size(); ++k) {
    const std::string problem = word_problem(words_[k]);
    if (!problem.empty())
      throw ConfigError("WordTokenizer: word " + std::to_string(k) + " \"" + words_[k] + "\" " +
                        problem);
    if (!ids_.emplace(words_[k], kFirstWordId + static_cast<int64_t>(k)).second)
      throw ConfigError("WordTokenizer: word " + std::to_string(k) + " \"" + words_[k] +
                        "\" is a duplicate of word " +
                        std::to_string(ids_.at(words_[k]) - kFirstWordId));
  }
}

WordTokenizer WordTokenizer::build(const std::vector<std::string>& texts, int64_t min_count) {
  RUNNER_CHECK(min_count >= 1, ConfigError,
               "WordTokenizer::build: min_count = " + std::to_string(min_count) + " must be >= 1");
  std::unordered_map<std::string, int64_t> counts;
  for (const std::string& text : texts) {
    const std::u32string cleaned = clean_codepoints(text);
    for (const Piece& p : split_pieces(cleaned))
      if (p.special == Special::kNone)
        ++counts[encode_utf8(cleaned.data() + p.begin, cleaned.data() + p.end)];
  }
  std::vector<std::pair<std::string, int64_t>> kept;
  for (auto& [word, count] : counts)
    if (count >= min_count) kept.emplace_back(word, count);
  std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::vector<std::string> words;
  words.reserve(kept.size());
  for (auto& [word, count] : kept) words.push_back(std::move(word));
  return WordTokenizer(std::move(words));
}

std::vector<int64_t> WordTokenizer::encode(const std::string& text) const {
  auto append_id = [this](const std::string& word, std::vector<int64_t>& ids) {
    auto it = ids_.find(word);
    ids.push_back(it == ids_.end() ? kUnknownId : it->second);
  };
  return encode_framed(text, sot_id(), eot_id(), append_id);
}

std::string WordTokenizer::to_text() const {
  std::string out = std::string(kWordHeader) + "\nwords " + std::to_string(words_.size()) + "\n";
  for (const std::string& w : words_) out += w + "\n";
  return out;
}

WordTokenizer WordTokenizer::from_text(const std::string& text, const std::string& source) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) {
      throw IoError(source + ": line " + std::to_string(lines.size() + 1) +
                    ": does not end in a newline; hint: the text is truncated");
    }
    lines.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  auto at_line = [&](size_t k) {
    const std::string shown = k < lines.size() ? lines[k].substr(0, 80) : "";
    return source + ": line " + std::to_string(k + 1) + " \"" + shown + "\": ";
  };
  if (lines.empty() || lines[0] != kWordHeader)
    throw IoError(at_line(0) + "expected \"" + kWordHeader +
                  "\"; hint: not a word tokenizer, or a newer version of the format");
  int64_t count = -1;
  if (lines.size() < 2 || lines[1].rfind("words ", 0) != 0)
    throw IoError(at_line(1) + "expected \"words N\"");
  {
    const std::string digits = lines[1].substr(6);
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(digits.c_str(), &end, 10);
    if (digits.empty() || !std::isdigit(static_cast<unsigned char>(digits[0])) || *end != '\0' ||
        errno != 0)
      throw IoError(at_line(1) + "expected \"words N\" with N a non-negative integer");
    count = v;
  }
  if (static_cast<int64_t>(lines.size()) - 2 != count)
    throw IoError(at_line(std::min(lines.size(), static_cast<size_t>(count) + 2)) + "expected " +
                  std::to_string(count) + " words (header says so), found " +
                  std::to_string(lines.size() - 2) + "; hint: the text is truncated or edited");
  std::unordered_map<std::string, size_t> seen;
  for (size_t k = 2; k < lines.size(); ++k) {
    const std::string problem = word_problem(lines[k]);
    if (!problem.empty()) throw IoError(at_line(k) + "the word " + problem);
    auto [it, fresh] = seen.emplace(lines[k], k);
    if (!fresh) throw IoError(at_line(k) + "duplicate of line " + std::to_string(it->second + 1));
  }
  return WordTokenizer(std::vector<std::string>(lines.begin() + 2, lines.end()));
}

void WordTokenizer::save(const std::string& path) const {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      throw IoError(path + ": cannot write temporary file " + tmp + " (" + std::strerror(errno) +
                    ")");
    const std::string text = to_text();
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      throw IoError(path + ": writing " + tmp + " failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw IoError(path + ": cannot rename " + tmp + " onto it (" + why + ")");
  }
}

WordTokenizer WordTokenizer::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw IoError(path + ": read failed");
  return from_text(text.str(), path);
}

at::Tensor tokenize(const Tokenizer& tok, const std::vector<std::string>& texts,
                    int64_t context_length) {
  RUNNER_CHECK(context_length >= 2, ConfigError,
               "tokenize: context_length = " + std::to_string(context_length) +
                   " must be >= 2 (room for the start and end tokens); CLIP uses 77");
  std::vector<std::vector<int64_t>> rows;
  rows.reserve(texts.size());
  int64_t width = 0;
  for (const std::string& text : texts) {
    std::vector<int64_t> ids = tok.encode(text);
    if (static_cast<int64_t>(ids.size()) > context_length) {
      ids.resize(static_cast<size_t>(context_length));
      ids.back() = tok.eot_id();
    }
    width = std::max(width, static_cast<int64_t>(ids.size()));
    rows.push_back(std::move(ids));
  }
  at::Tensor out = at::zeros({static_cast<int64_t>(rows.size()), width}, at::kLong);
  int64_t* data = out.data_ptr<int64_t>();
  for (size_t r = 0; r < rows.size(); ++r)
    std::copy(rows[r].begin(), rows[r].end(), data + static_cast<int64_t>(r) * width);
  return out;
}

std::shared_ptr<const Tokenizer> checkpoint_tokenizer(const std::map<std::string, std::string>& extras,
                                                      const std::string& vocab_file, const std::string& source) {
  if (const auto word = extras.find("tokenizer"); word != extras.end()) {
    return std::make_shared<WordTokenizer>(WordTokenizer::from_text(word->second, source + ":extras/tokenizer"));
  }
  RUNNER_CHECK(!vocab_file.empty(), ConfigError,
               fmt::format("{}: no word vocabulary in its extras; set data.tokenizer=clip_bpe and data.vocab_file to "
                           "CLIP's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz) for a released MERU/CLIP checkpoint",
                           source));
  return load_clip_bpe(vocab_file);
}

}  // namespace runner::models
