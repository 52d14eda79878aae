// Internal to the tokenizers: UTF-8 code points, CLIP's text cleaning (HTML unescaping,
// whitespace, Python-compatible lower-casing) and its split pattern as a scanner.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace runner::models::text_detail {

constexpr const char* kSotText = "<|startoftext|>";
constexpr const char* kEotText = "<|endoftext|>";

// Invalid UTF-8 bytes become U+FFFD, one per byte.
std::u32string decode_utf8(const std::string& s);
std::string encode_utf8(const char32_t* begin, const char32_t* end);

// CLIP's cleaning: HTML-unescape twice, collapse whitespace, strip, lower-case.
std::u32string clean_codepoints(const std::string& text);

enum class Special { kNone, kSot, kEot };
struct Piece {
  size_t begin;
  size_t end;
  Special special;
};

// The pieces of CLIP's split pattern over cleaned text, as [begin, end) code point ranges.
std::vector<Piece> split_pieces(const std::u32string& s);

}  // namespace runner::models::text_detail
