// PCRE2 (Debian: libpcre2-dev), 8-bit code units: the regular-expression engine of
// schema `pattern`s and of the error sanitizer (MCPJailCore/RegularExpression.swift).
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
