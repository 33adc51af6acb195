// result<T>: a value or an error, returned on every path that can fail at run time.
//
// Modelled on std::expected (C++23), small enough for hot paths: no allocation, no
// exceptions. Reading the value of a failed result is a programmer error and asserts.
#pragma once

#include <type_traits>
#include <utility>
#include <variant>

#include "engine/base/assert.h"
#include "engine/base/error.h"

namespace sluice {

template <typename T>
class [[nodiscard]] result {
 public:
  result(T value) noexcept(std::is_nothrow_move_constructible_v<T>)  // NOLINT: implicit
      : state_(std::in_place_index<0>, std::move(value)) {}
  result(error failure) noexcept  // NOLINT: implicit on purpose
      : state_(std::in_place_index<1>, failure) {}

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & noexcept {
    SLUICE_ASSERT(ok(), "value() of a failed result");
    return *std::get_if<0>(&state_);
  }
  const T& value() const& noexcept {
    SLUICE_ASSERT(ok(), "value() of a failed result");
    return *std::get_if<0>(&state_);
  }
  T&& value() && noexcept {
    SLUICE_ASSERT(ok(), "value() of a failed result");
    return std::move(*std::get_if<0>(&state_));
  }
  T* operator->() noexcept { return &value(); }
  const T* operator->() const noexcept { return &value(); }
  T& operator*() & noexcept { return value(); }
  const T& operator*() const& noexcept { return value(); }

  const error& failure() const noexcept {
    SLUICE_ASSERT(!ok(), "failure() of a successful result");
    return *std::get_if<1>(&state_);
  }
  errc code() const noexcept { return ok() ? errc::ok : failure().code(); }

 private:
  std::variant<T, error> state_;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() noexcept = default;
  result(error failure) noexcept : failure_(failure), failed_(true) {}  // NOLINT: implicit

  bool ok() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return ok(); }
  const error& failure() const noexcept {
    SLUICE_ASSERT(!ok(), "failure() of a successful result");
    return failure_;
  }
  errc code() const noexcept { return ok() ? errc::ok : failure_.code(); }

 private:
  error failure_{errc::ok, ""};
  bool failed_ = false;
};

// Returns early from the enclosing function with the failure of `expr`, if any.
#define SLUICE_TRY(expr)                                              \
  do {                                                                \
    if (auto sluice_try_result_ = (expr); !sluice_try_result_.ok()) { \
      return sluice_try_result_.failure();                            \
    }                                                                 \
  } while (false)

}  // namespace sluice
