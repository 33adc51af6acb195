// Runs the real `sluice` binary: flags, start-up, SIGTERM and the clean-shutdown marker.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/storage_fixture.h"

namespace sluice::test {
namespace {

struct process_result {
  int exit_code = -1;
  std::string err;
};

// Starts sluice with `args`, optionally sends `signal` after `delay`, and collects its
// exit code and standard error.
process_result run_sluice(std::vector<std::string> args, int signal = 0,
                          std::chrono::milliseconds delay = std::chrono::milliseconds(0)) {
  int err_pipe[2];
  SLUICE_ASSERT(::pipe(err_pipe) == 0, "pipe failed");
  pid_t pid = ::fork();
  SLUICE_ASSERT(pid >= 0, "fork failed");
  if (pid == 0) {
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::close(err_pipe[0]);
    std::vector<char*> argv;
    std::string binary = SLUICE_BINARY;
    argv.push_back(binary.data());
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(err_pipe[1]);
  if (signal != 0) {
    std::this_thread::sleep_for(delay);
    ::kill(pid, signal);
  }
  process_result out;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(err_pipe[0], buffer, sizeof buffer)) > 0) out.err.append(buffer, n);
  ::close(err_pipe[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return out;
}

TEST(SluiceProcess, UnknownFlagIsAOneLineErrorAndExitTwo) {
  auto r = run_sluice({"--frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--frobnicate"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(SluiceProcess, InvalidValueNamesTheFlag) {
  auto r = run_sluice({"--retention-ms", "soon"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--retention-ms"), std::string::npos) << r.err;
}

TEST(SluiceProcess, SigtermStopsCleanlyAndLeavesTheMarker) {
  temp_dir dir;
  auto r = run_sluice({"--listen", "127.0.0.1:0", "--data-dir", dir.path(), "--cores", "1"},
                      SIGTERM, std::chrono::milliseconds(500));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("data directory " + dir.path()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("on 1 cores"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("stopped cleanly"), std::string::npos) << r.err;
  EXPECT_TRUE(path_exists(dir.path() + "/.sluice_cleanshutdown"));
  EXPECT_TRUE(path_exists(dir.path() + "/recovery-point-offset-checkpoint"));
}

// Several cores: SIGTERM reaches core 0 whichever thread the kernel picks, every core
// stops, and each core's log manager wrote its own checkpoint files.
TEST(SluiceProcess, SigtermStopsEveryCoreCleanly) {
  temp_dir dir;
  auto r = run_sluice({"--listen", "127.0.0.1:0", "--data-dir", dir.path(), "--cores", "3"},
                      SIGTERM, std::chrono::milliseconds(500));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("on 3 cores"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("stopped cleanly"), std::string::npos) << r.err;
  EXPECT_TRUE(path_exists(dir.path() + "/.sluice_cleanshutdown"));
  for (const char* k : {"0", "1", "2"}) {
    EXPECT_TRUE(path_exists(dir.path() + "/recovery-point-offset-checkpoint." + k)) << k;
  }
  EXPECT_FALSE(path_exists(dir.path() + "/recovery-point-offset-checkpoint"));
}

TEST(SluiceProcess, SecondProcessOnTheSameDataDirectoryIsRefused) {
  temp_dir dir;
  int err_pipe[2];
  ASSERT_EQ(::pipe(err_pipe), 0);
  pid_t first = ::fork();
  ASSERT_GE(first, 0);
  if (first == 0) {
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::execl(SLUICE_BINARY, SLUICE_BINARY, "--listen", "127.0.0.1:0", "--data-dir",
            dir.path().c_str(), nullptr);
    ::_exit(127);
  }
  ::close(err_pipe[1]);
  // Wait until the first one is ready.
  std::string err;
  char buffer[1024];
  for (int i = 0; i < 100 && err.find("ready") == std::string::npos; ++i) {
    ssize_t n = ::read(err_pipe[0], buffer, sizeof buffer);
    if (n <= 0) break;
    err.append(buffer, n);
  }
  auto second = run_sluice({"--listen", "127.0.0.1:0", "--data-dir", dir.path()});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("in use by another process"), std::string::npos) << second.err;
  ::kill(first, SIGINT);
  int status = 0;
  ::waitpid(first, &status, 0);
  ::close(err_pipe[0]);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace sluice::test
