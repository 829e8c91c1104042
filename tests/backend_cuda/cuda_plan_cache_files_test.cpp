// The cuDNN plan cache's folders, names and entry files (src/backend/cuda/plan_cache.h), without
// a GPU: what the CUDA backend reads back is exactly what it wrote, and anything else (absent,
// truncated, altered, another key's, trailing bytes, not a file) is refused, never thrown.
// Label cpu.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "backend/cuda/plan_cache.h"
#include "../common/scoped.h"

using namespace tandem::cuda_exec;
namespace fs = std::filesystem;

using tandem::test::ScopedEnv;
using tandem::test::ScopedTempDir;

namespace {



std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void spit(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary | std::ios::trunc) << s; }

size_t files_in(const fs::path& dir) {
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

const std::string kKey = "NVIDIA_H200_sm_90_cudnn_91900_driver_13000|data=0|x=2x16x12x12|engine=7|knobs=1=2";
// A payload with what JSON text and cuDNN's count can hold: newlines, quotes, a trailing NUL.
const std::string kPlan = std::string("{\"engine\": 7,\n \"text\": \"a\\nb\"}") + '\0';

}  // namespace

TEST(CudaPlanCacheFiles, FolderFollowsTheCacheDirAndTheSwitch) {
  const ScopedTempDir dir("folder");
  const ScopedEnv cache("TANDEM_CACHE_DIR", dir.path.c_str()), on("TANDEM_CUDNN_PLAN_CACHE", nullptr);
  EXPECT_EQ(plan_cache_folder("NVIDIA H200|sm_90|cudnn 91900|driver 13000"),
            (dir.path / "cudnn-plans" / "NVIDIA_H200_sm_90_cudnn_91900_driver_13000").string());
  EXPECT_EQ(plan_cache_folder("../x/.."), (dir.path / "cudnn-plans" / ".._x_..").string());  // never a path
  EXPECT_EQ(plan_cache_folder(".."), (dir.path / "cudnn-plans" / "device").string());
  {
    const ScopedEnv off("TANDEM_CUDNN_PLAN_CACHE", "off");
    EXPECT_EQ(plan_cache_folder("gpu"), "");
  }
  {
    const ScopedEnv off("TANDEM_CUDNN_PLAN_CACHE", "0");
    EXPECT_EQ(plan_cache_folder("gpu"), "");
  }
  const ScopedEnv no_dir("TANDEM_CACHE_DIR", nullptr), no_xdg("XDG_CACHE_HOME", nullptr), no_home("HOME", nullptr);
  EXPECT_EQ(plan_cache_folder("gpu"), "");  // no cache folder at all: off, no error
}

TEST(CudaPlanCacheFiles, PathIsAHashOfTheKey) {
  const std::string a = plan_cache_path("/c", kKey), b = plan_cache_path("/c", kKey + "x");
  EXPECT_EQ(a, plan_cache_path("/c", kKey));
  EXPECT_NE(a, b);
  const std::string name = fs::path(a).filename().string();
  ASSERT_EQ(name.size(), 32u + 5u) << name;
  EXPECT_EQ(name.substr(32), ".plan");
  EXPECT_EQ(name.find_first_not_of("0123456789abcdef"), 32u);
  EXPECT_EQ(fs::path(a).parent_path(), fs::path("/c"));
}

TEST(CudaPlanCacheFiles, WrittenEntryReadsBackExactly) {
  const ScopedTempDir dir("roundtrip");
  const std::string path = plan_cache_path((dir.path / "dev").string(), kKey);  // the folder is created
  std::string plan = "unchanged";
  EXPECT_EQ(read_plan_entry(path, kKey, &plan), PlanEntry::kAbsent);
  EXPECT_EQ(plan, "unchanged");
  ASSERT_TRUE(write_plan_entry(path, kKey, kPlan));
  EXPECT_EQ(read_plan_entry(path, kKey, &plan), PlanEntry::kFound);
  EXPECT_EQ(plan, kPlan);
  EXPECT_EQ(files_in(dir.path), 1u);  // no temporary file left
  // Overwritten in place by a newer plan.
  ASSERT_TRUE(write_plan_entry(path, kKey, "{\"engine\": 8}"));
  EXPECT_EQ(read_plan_entry(path, kKey, &plan), PlanEntry::kFound);
  EXPECT_EQ(plan, "{\"engine\": 8}");
  EXPECT_EQ(files_in(dir.path), 1u);
}

TEST(CudaPlanCacheFiles, DamagedOrForeignEntriesAreRefused) {
  const ScopedTempDir dir("damaged");
  const std::string path = plan_cache_path(dir.path.string(), kKey);
  ASSERT_TRUE(write_plan_entry(path, kKey, kPlan));
  const std::string whole = slurp(path);
  std::string plan;
  EXPECT_EQ(read_plan_entry(path, kKey + "|other", &plan), PlanEntry::kRefused);  // another key's entry
  struct Damage {
    const char* what;
    std::string bytes;
  };
  std::string flipped = whole, bad_magic = whole, bad_sum = whole;
  flipped[whole.size() - 3] ^= 0x01;
  bad_magic[0] = 'T';
  const size_t key_end = whole.find('\n', whole.find('\n') + 1);
  const size_t sum_at = whole.find('\n', key_end + 1) - 1;  // the checksum's last digit
  bad_sum[sum_at] = bad_sum[sum_at] == '0' ? '1' : '0';
  const Damage damages[] = {{"a payload byte", flipped},
                            {"the magic line", bad_magic},
                            {"the checksum", bad_sum},
                            {"truncated payload", whole.substr(0, whole.size() - 1)},
                            {"truncated header", whole.substr(0, 12)},
                            {"a byte after the payload", whole + "x"},
                            {"empty", ""},
                            {"not ours", "{\"engine\": 7}"}};
  for (const Damage& d : damages) {
    SCOPED_TRACE(d.what);
    spit(path, d.bytes);
    plan = "unchanged";
    EXPECT_EQ(read_plan_entry(path, kKey, &plan), PlanEntry::kRefused);
    EXPECT_EQ(plan, "unchanged");
  }
  // A folder where the entry should be: refused, and writing over it fails cleanly.
  fs::remove(path);
  fs::create_directories(path);
  EXPECT_EQ(read_plan_entry(path, kKey, &plan), PlanEntry::kRefused);
  EXPECT_FALSE(write_plan_entry(path, kKey, kPlan));
  fs::remove_all(path);
  // A damaged entry is overwritten by the next write and then found.
  spit(path, "garbage");
  ASSERT_TRUE(write_plan_entry(path, kKey, kPlan));
  EXPECT_EQ(read_plan_entry(path, kKey, &plan), PlanEntry::kFound);
  EXPECT_EQ(plan, kPlan);
}

TEST(CudaPlanCacheFiles, WhatCannotBeWrittenIsNotWritten) {
  const ScopedTempDir dir("refuse");
  const std::string path = plan_cache_path(dir.path.string(), kKey);
  EXPECT_FALSE(write_plan_entry(path, "two\nlines", kPlan));  // the key is one line of the file
  EXPECT_FALSE(write_plan_entry(path, kKey, ""));             // cuDNN gave no serialization
  spit(dir.path / "file", "x");                               // a file where the folder should be
  EXPECT_FALSE(write_plan_entry(plan_cache_path((dir.path / "file").string(), kKey), kKey, kPlan));
  EXPECT_EQ(files_in(dir.path), 1u);  // only that file: no entry, no temporary file
}

TEST(CudaPlanCacheFiles, CountersAddUp) {
  const PlanCacheStats a = plan_cache_stats();
  count_plan_cache(PlanCacheEvent::kHit);
  count_plan_cache(PlanCacheEvent::kMiss);
  count_plan_cache(PlanCacheEvent::kMiss);
  count_plan_cache(PlanCacheEvent::kRejected);
  count_plan_cache(PlanCacheEvent::kStore);
  const PlanCacheStats b = plan_cache_stats();
  EXPECT_EQ(b.hits - a.hits, 1);
  EXPECT_EQ(b.misses - a.misses, 2);
  EXPECT_EQ(b.rejected - a.rejected, 1);
  EXPECT_EQ(b.stores - a.stores, 1);
}
