#include <gtest/gtest.h>

#include "engine/base/log.h"
#include "engine/base/result.h"
#include "engine/base/types.h"

namespace sluice {
namespace {

result<int> parse_positive(int v) {
  if (v <= 0) return error(errc::invalid_argument, "must be positive");
  return v;
}

result<void> chain(int v) {
  SLUICE_TRY(parse_positive(v));
  return {};
}

TEST(Result, CarriesValueOrError) {
  auto good = parse_positive(3);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);
  auto bad = parse_positive(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), errc::invalid_argument);
  EXPECT_STREQ(bad.failure().detail(), "must be positive");
}

TEST(Result, TryPropagatesFailure) {
  EXPECT_TRUE(chain(1).ok());
  EXPECT_EQ(chain(0).code(), errc::invalid_argument);
}

TEST(Result, ReadingValueOfFailureAsserts) {
  auto bad = parse_positive(-1);
  EXPECT_DEATH((void)bad.value(), "value\\(\\) of a failed result");
}

TEST(Error, ErrnoMapping) {
  EXPECT_EQ(error_from_errno(-ENOSPC, "x").code(), errc::no_space);
  EXPECT_EQ(error_from_errno(-EIO, "x").code(), errc::io_error);
  EXPECT_EQ(error_from_errno(-EIO, "x").os_errno(), EIO);
  EXPECT_EQ(errc_name(errc::corrupt_batch), "corrupt_batch");
}

TEST(Types, OffsetArithmetic) {
  offset a(10);
  EXPECT_EQ((a + 5).value(), 15);
  EXPECT_EQ(offset(15) - a, 5);
  EXPECT_LT(a, offset(11));
  EXPECT_EQ(fmt::format("{}", a), "10");
}

TEST(Log, ParsesLevels) {
  EXPECT_EQ(parse_log_level("warn"), log_level::warn);
  EXPECT_EQ(parse_log_level("loud"), std::nullopt);
  set_log_level(log_level::error);
  EXPECT_FALSE(log_enabled(log_level::info));
  EXPECT_TRUE(log_enabled(log_level::error));
  set_log_level(log_level::info);
}

}  // namespace
}  // namespace sluice
