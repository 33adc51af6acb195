#include "tools/admin/text_table.h"

#include <algorithm>

#include "engine/base/assert.h"

namespace sluice::admin {

void text_table::add(std::vector<std::string> row) {
  SLUICE_ASSERT(row.size() == header_.size(), "a table row needs one cell per column");
  rows_.push_back(std::move(row));
}

std::string text_table::render() const {
  std::vector<std::size_t> widths(header_.size());
  for (std::size_t c = 0; c < header_.size(); ++c) widths[c] = header_[c].size();
  for (const auto& row : rows_) {
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    for (std::size_t c = 0; c < cells.size(); ++c) {
      out += cells[c];
      if (c + 1 < cells.size()) out.append(widths[c] - cells[c].size() + 2, ' ');
    }
    out.push_back('\n');
  };
  line(header_);
  for (const auto& row : rows_) line(row);
  return out;
}

}  // namespace sluice::admin
