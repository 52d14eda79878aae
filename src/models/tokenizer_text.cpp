// CLIP's text cleaning and split pattern over Unicode code points (utf8proc categories).
#include "models/tokenizer_text.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <unordered_map>

namespace runner::models::text_detail {
namespace {

constexpr char32_t kReplacement = 0xFFFD;

}  // namespace

// ---- UTF-8 <-> code points.

std::u32string decode_utf8(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(s.size());
  while (left > 0) {
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n <= 0) {  // one bad byte becomes one U+FFFD, like errors="replace" on each stray byte
      out.push_back(kReplacement);
      n = 1;
    } else {
      out.push_back(static_cast<char32_t>(cp));
    }
    p += n;
    left -= n;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  utf8proc_uint8_t buf[4];
  utf8proc_ssize_t n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

std::string encode_utf8(const char32_t* begin, const char32_t* end) {
  std::string out;
  out.reserve(static_cast<size_t>(end - begin));
  for (const char32_t* c = begin; c != end; ++c) append_utf8(out, *c);
  return out;
}

// ---- HTML unescaping as Python's html.unescape (its regex, numeric rules, legacy prefixes).

struct Entity {
  char32_t cp;
  bool legacy;  // also recognised without the ';' (HTML5's legacy names)
};

// The 96 Latin-1 names, U+00A0..U+00FF in order; all are legacy names.
constexpr const char* kLatin1Names =
    "nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn "
    "sup2 sup3 acute micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest Agrave "
    "Aacute Acirc Atilde Auml Aring AElig Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml "
    "ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml Yacute THORN "
    "szlig agrave aacute acirc atilde auml aring aelig ccedil egrave eacute ecirc euml igrave "
    "iacute icirc iuml eth ntilde ograve oacute ocirc otilde ouml divide oslash ugrave uacute "
    "ucirc uuml yacute thorn yuml";
constexpr std::pair<const char*, char32_t> kLegacyEntities[] = {
    {"amp", '&'}, {"AMP", '&'}, {"lt", '<'}, {"LT", '<'}, {"gt", '>'}, {"GT", '>'},
    {"quot", '"'}, {"QUOT", '"'}, {"COPY", 0xA9}, {"REG", 0xAE}};
constexpr std::pair<const char*, char32_t> kSemicolonEntities[] = {
    {"apos", '\''}, {"OElig", 0x152}, {"oelig", 0x153}, {"Scaron", 0x160}, {"scaron", 0x161},
    {"Yuml", 0x178}, {"fnof", 0x192}, {"circ", 0x2C6}, {"tilde", 0x2DC}, {"ensp", 0x2002},
    {"emsp", 0x2003}, {"thinsp", 0x2009}, {"zwnj", 0x200C}, {"zwj", 0x200D}, {"lrm", 0x200E},
    {"rlm", 0x200F}, {"ndash", 0x2013}, {"mdash", 0x2014}, {"lsquo", 0x2018}, {"rsquo", 0x2019},
    {"sbquo", 0x201A}, {"ldquo", 0x201C}, {"rdquo", 0x201D}, {"bdquo", 0x201E},
    {"dagger", 0x2020}, {"Dagger", 0x2021}, {"bull", 0x2022}, {"hellip", 0x2026},
    {"permil", 0x2030}, {"prime", 0x2032}, {"Prime", 0x2033}, {"lsaquo", 0x2039},
    {"rsaquo", 0x203A}, {"oline", 0x203E}, {"frasl", 0x2044}, {"euro", 0x20AC},
    {"trade", 0x2122}, {"larr", 0x2190}, {"uarr", 0x2191}, {"rarr", 0x2192}, {"darr", 0x2193},
    {"harr", 0x2194}, {"minus", 0x2212}, {"infin", 0x221E}, {"asymp", 0x2248}, {"ne", 0x2260},
    {"le", 0x2264}, {"ge", 0x2265}, {"spades", 0x2660}, {"clubs", 0x2663}, {"hearts", 0x2665},
    {"diams", 0x2666}};

const std::unordered_map<std::string, Entity>& entity_table() {
  static const std::unordered_map<std::string, Entity> table = [] {
    std::unordered_map<std::string, Entity> t;
    std::istringstream latin1(kLatin1Names);
    char32_t cp = 0xA0;
    for (std::string name; latin1 >> name;) t[name] = {cp++, true};
    for (const auto& [name, c] : kLegacyEntities) t[name] = {c, true};
    for (const auto& [name, c] : kSemicolonEntities) t[name] = {c, false};
    return t;
  }();
  return table;
}

// Windows-1252 meanings Python gives to &#128; .. &#159; (0 where the code point is kept).
constexpr char32_t kCp1252[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

// Appends what Python's html.unescape makes of the numeric reference `value`.
void append_char_ref(std::u32string& out, uint64_t value) {
  if (value == 0) return out.push_back(kReplacement);
  if (value == 0x0D) return out.push_back(U'\r');
  if (value >= 0x80 && value <= 0x9F) {  // kept as is where Windows-1252 has no character
    const char32_t cp = kCp1252[value - 0x80];
    return out.push_back(cp != 0 ? cp : static_cast<char32_t>(value));
  }
  if ((value >= 0xD800 && value <= 0xDFFF) || value > 0x10FFFF) return out.push_back(kReplacement);
  const bool invalid = (value >= 0x01 && value <= 0x08) || value == 0x0B ||
                       (value >= 0x0E && value <= 0x1F) || (value >= 0x7F && value <= 0x9F) ||
                       (value >= 0xFDD0 && value <= 0xFDEF) || (value & 0xFFFE) == 0xFFFE;
  if (!invalid) out.push_back(static_cast<char32_t>(value));
}

// Value of the ASCII digit c in base 10 or 16, or -1.
int digit_value(char32_t c, int base) {
  const int v = c >= '0' && c <= '9' ? static_cast<int>(c - '0')
                : c >= 'a' && c <= 'f' ? static_cast<int>(c - 'a' + 10)
                : c >= 'A' && c <= 'F' ? static_cast<int>(c - 'A' + 10) : -1;
  return v < base ? v : -1;
}

// The leading ASCII part of an entity name (table names are ASCII).
std::string ascii_prefix(const char32_t* begin, const char32_t* end) {
  std::string name;
  for (const char32_t* c = begin; c != end && *c < 0x80; ++c) name.push_back(static_cast<char>(*c));
  return name;
}

// One pass of Python's html.unescape: &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
std::u32string html_unescape(const std::u32string& s) {
  if (s.find(U'&') == std::u32string::npos) return s;
  std::u32string out;
  out.reserve(s.size());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (s[i] != U'&') {
      out.push_back(s[i++]);
      continue;
    }
    const size_t j = i + 1;
    if (j < n && s[j] == U'#') {
      const bool hex = j + 1 < n && (s[j + 1] == U'x' || s[j + 1] == U'X');
      size_t k = hex ? j + 2 : j + 1;
      const size_t digits_begin = k;
      const int base = hex ? 16 : 10;
      uint64_t value = 0;
      for (; k < n && digit_value(s[k], base) >= 0; ++k)  // saturates: past U+10FFFF is U+FFFD
        value = std::min<uint64_t>(value * base + digit_value(s[k], base), 0x110000);
      if (k == digits_begin) {  // "&#" or "&#x" without digits is plain text
        out.push_back(s[i++]);
        continue;
      }
      if (k < n && s[k] == U';') ++k;
      append_char_ref(out, value);
      i = k;
      continue;
    }
    size_t e = j;
    while (e < n && e - j < 32) {
      const char32_t c = s[e];
      if (c == U'\t' || c == U'\n' || c == U'\f' || c == U' ' || c == U'<' || c == U'&' ||
          c == U'#' || c == U';')
        break;
      ++e;
    }
    if (e == j) {
      out.push_back(s[i++]);
      continue;
    }
    const bool semicolon = e < n && s[e] == U';';
    const size_t match_end = semicolon ? e + 1 : e;
    const std::string name = ascii_prefix(s.data() + j, s.data() + e);
    const bool all_ascii = name.size() == e - j;
    const auto& table = entity_table();
    bool done = false;
    auto it = all_ascii ? table.find(name) : table.end();
    if (it != table.end() && (semicolon || it->second.legacy)) {
      out.push_back(it->second.cp);
      done = true;
    }
    // Python then tries the longest legacy name that is a prefix of the match minus its last
    // character; the rest of the match follows as text.
    const size_t longest = std::min(name.size(), semicolon ? e - j : e - j - 1);
    for (size_t x = longest; !done && x >= 2; --x) {
      auto p = table.find(name.substr(0, x));
      if (p != table.end() && p->second.legacy) {
        out.push_back(p->second.cp);
        out.append(s, j + x, match_end - (j + x));
        done = true;
      }
    }
    if (!done) out.append(s, i, match_end - i);
    i = match_end;
  }
  return out;
}

// ---- Character classes and lower-casing.

// Python's str.isspace: what CLIP's strip() removes at both ends.
bool is_py_space(char32_t c) {
  if (c == U' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F) || c == 0x85) return true;
  if (c < 0xA0) return false;
  const utf8proc_category_t cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

// \s of Python's `regex` module (Unicode White_Space), which CLIP uses to collapse whitespace and
// to split: str.isspace without U+001C..U+001F, so those stay inside a text as punctuation.
bool is_white_space(char32_t c) { return is_py_space(c) && !(c >= 0x1C && c <= 0x1F); }

bool is_letter(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: return true;
    default: return false;
  }
}

bool is_number(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO: return true;
    default: return false;
  }
}

// Unicode "Cased" and "Case_Ignorable", approximated from utf8proc's data, for final sigma.
bool is_cased(char32_t c) {
  const auto cp = static_cast<utf8proc_int32_t>(c);
  return utf8proc_islower(cp) || utf8proc_isupper(cp) ||
         utf8proc_category(cp) == UTF8PROC_CATEGORY_LT;
}
bool is_case_ignorable(char32_t c) {
  switch (c) {
    case U'\'': case U'.': case U':': case U'^': case U'`': case 0xB7: case 0x387: case 0x55F:
    case 0x5F4: case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52:
    case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A: return true;
    default: break;
  }
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_SK: return true;
    default: return false;
  }
}

// Python's str.lower: simple mappings, plus the one unconditional full mapping (U+0130) and
// final sigma (Σ at the end of a word lowers to ς).
std::u32string lower(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    if (c < 0x80) {
      out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
    } else if (c == 0x130) {
      out.append({U'i', 0x307});
    } else if (c == 0x3A3) {
      size_t j = i;
      while (j > 0 && is_case_ignorable(s[j - 1])) --j;
      bool final_sigma = j > 0 && is_cased(s[j - 1]);
      size_t k = i + 1;
      while (k < s.size() && is_case_ignorable(s[k])) ++k;
      if (k < s.size() && is_cased(s[k])) final_sigma = false;
      out.push_back(final_sigma ? 0x3C2 : 0x3C3);
    } else {
      out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
    }
  }
  return out;
}

// CLIP: unescape twice, strip(), collapse regex \s runs to one space, strip(), lower().
std::u32string clean_codepoints(const std::string& text) {
  const std::u32string unescaped = html_unescape(html_unescape(decode_utf8(text)));
  size_t begin = 0, end = unescaped.size();
  while (begin < end && is_py_space(unescaped[begin])) ++begin;
  while (end > begin && is_py_space(unescaped[end - 1])) --end;
  std::u32string collapsed;
  collapsed.reserve(end - begin);
  for (size_t i = begin; i < end; ++i) {
    if (!is_white_space(unescaped[i])) {
      collapsed.push_back(unescaped[i]);
    } else if (!is_white_space(unescaped[i - 1])) {
      collapsed.push_back(U' ');
    }
  }
  return lower(collapsed);
}

// ---- CLIP's split pattern as a scanner.


// CLIP compiles its pattern with IGNORECASE; on lower-cased text the only letter that then
// matches a literal of the pattern besides itself is U+017F (long s) for 's'.
bool matches_literal(char32_t c, char ascii) {
  return c == static_cast<char32_t>(ascii) || (ascii == 's' && c == 0x17F);
}

bool starts_with_at(const std::u32string& s, size_t i, const char* ascii) {
  for (size_t k = 0; ascii[k] != '\0'; ++k)
    if (i + k >= s.size() || !matches_literal(s[i + k], ascii[k])) return false;
  return true;
}

// Characters no alternative matches, so findall skips them: whitespace, and U+0345, which under
// IGNORECASE `regex` excludes from [^\s\p{L}\p{N}] (its case fold is a letter) yet [\p{L}] does
// not take.
bool is_unmatched(char32_t c) { return is_white_space(c) || c == 0x345; }

std::vector<Piece> split_pieces(const std::u32string& s) {
  std::vector<Piece> pieces;
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const char32_t c = s[i];
    if (c == U'<' && (starts_with_at(s, i, kSotText) || starts_with_at(s, i, kEotText))) {
      // Only the exact ASCII spelling is special (CLIP's bpe cache); "<|ſtartoftext|>" is text.
      const bool sot = starts_with_at(s, i, kSotText);
      const size_t e = i + std::strlen(sot ? kSotText : kEotText);
      const bool exact = std::find(s.data() + i, s.data() + e, char32_t{0x17F}) == s.data() + e;
      pieces.push_back({i, e, !exact ? Special::kNone : sot ? Special::kSot : Special::kEot});
    } else if (c == U'\'' && (starts_with_at(s, i, "'s") || starts_with_at(s, i, "'t") ||
                              starts_with_at(s, i, "'m") || starts_with_at(s, i, "'d"))) {
      pieces.push_back({i, i + 2, Special::kNone});
    } else if (c == U'\'' && (starts_with_at(s, i, "'re") || starts_with_at(s, i, "'ve") ||
                              starts_with_at(s, i, "'ll"))) {
      pieces.push_back({i, i + 3, Special::kNone});
    } else if (is_letter(c)) {
      size_t e = i + 1;
      while (e < n && is_letter(s[e])) ++e;
      pieces.push_back({i, e, Special::kNone});
    } else if (is_number(c)) {
      pieces.push_back({i, i + 1, Special::kNone});
    } else if (!is_unmatched(c)) {
      size_t e = i + 1;
      while (e < n && !is_unmatched(s[e]) && !is_letter(s[e]) && !is_number(s[e])) ++e;
      pieces.push_back({i, e, Special::kNone});
    } else {
      ++i;
      continue;
    }
    i = pieces.back().end;
  }
  return pieces;
}

}  // namespace runner::models::text_detail
