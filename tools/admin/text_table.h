// text_table: the aligned columns sluice-admin prints for people.
//
// Rows of cells under a header; each column is as wide as its widest cell, columns are
// separated by two spaces, and the last column is not padded (no trailing blanks).
//
// Owned by one command; not thread-safe.
#pragma once

#include <string>
#include <vector>

namespace sluice::admin {

class text_table {
 public:
  explicit text_table(std::vector<std::string> header) : header_(std::move(header)) {}
  // A row with as many cells as the header.
  void add(std::vector<std::string> row);
  bool empty() const noexcept { return rows_.empty(); }
  // The header line and every row, each ending in a newline.
  std::string render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace sluice::admin
