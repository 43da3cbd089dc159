// The one JSON string quoting Silk's traces and event logs use.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace silk {

// `text` as a JSON string literal, quotes included: quotes and backslashes
// escaped, control characters as \u00XX.
std::string JsonQuoted(absl::string_view text);

}  // namespace silk
