// Little-endian binary writer and a bounds-checked reader for the engine format.
// Every read checks the remaining size first; counts are checked against what is left before
// anything is allocated, so a hostile size cannot make the loader allocate or read out of bounds.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tandem/types.h"

namespace tandem::engine_io {

class Writer {
 public:
  std::vector<uint8_t> buf;
  void raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    buf.insert(buf.end(), b, b + n);
  }
  void u8(uint8_t v) { buf.push_back(v); }
  void u32(uint32_t v) { for (int i = 0; i < 4; ++i) buf.push_back(uint8_t(v >> (8 * i))); }
  void u64(uint64_t v) { for (int i = 0; i < 8; ++i) buf.push_back(uint8_t(v >> (8 * i))); }
  void i32(int32_t v) { u32(static_cast<uint32_t>(v)); }
  void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
  void f32(float v) { uint32_t u; std::memcpy(&u, &v, 4); u32(u); }
  void f64(double v) { uint64_t u; std::memcpy(&u, &v, 8); u64(u); }
  void boolean(bool v) { u8(v ? 1 : 0); }
  void str(const std::string& s) { u32(static_cast<uint32_t>(s.size())); raw(s.data(), s.size()); }
  void dims(const std::vector<int64_t>& d) { u32(static_cast<uint32_t>(d.size())); for (auto x : d) i64(x); }
  void ints(const std::vector<int>& d) { u32(static_cast<uint32_t>(d.size())); for (auto x : d) i32(x); }
  void floats(const std::vector<float>& d) { u32(static_cast<uint32_t>(d.size())); for (auto x : d) f32(x); }
  void align(size_t a) { while (buf.size() % a) buf.push_back(0); }
  size_t size() const { return buf.size(); }
};

class Reader {
 public:
  Reader(const uint8_t* p, size_t n, std::string where) : p_(p), n_(n), where_(std::move(where)) {}
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(fmt::format("{}: {} (at byte {} of {})", where_, what, pos_, n_));
  }
  void need(size_t k, const char* what) const {
    if (k > n_ - pos_) fail(fmt::format("truncated: {} needs {} bytes, {} left", what, k, n_ - pos_));
  }
  const uint8_t* raw(size_t k, const char* what) {
    need(k, what);
    const uint8_t* r = p_ + pos_;
    pos_ += k;
    return r;
  }
  uint8_t u8(const char* what = "u8") { return *raw(1, what); }
  uint32_t u32(const char* what = "u32") {
    const uint8_t* b = raw(4, what);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t(b[i]) << (8 * i);
    return v;
  }
  uint64_t u64(const char* what = "u64") {
    const uint8_t* b = raw(8, what);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t(b[i]) << (8 * i);
    return v;
  }
  int32_t i32(const char* what = "i32") { return static_cast<int32_t>(u32(what)); }
  int64_t i64(const char* what = "i64") { return static_cast<int64_t>(u64(what)); }
  float f32(const char* what = "f32") { uint32_t u = u32(what); float f; std::memcpy(&f, &u, 4); return f; }
  double f64(const char* what = "f64") { uint64_t u = u64(what); double f; std::memcpy(&f, &u, 8); return f; }
  bool boolean(const char* what = "bool") {
    uint8_t v = u8(what);
    if (v > 1) fail(fmt::format("{}: bad boolean {}", what, v));
    return v != 0;
  }
  // A count of elements each at least `min_size` bytes: checked against the bytes left.
  uint32_t count(size_t min_size, const char* what) {
    uint32_t c = u32(what);
    if (min_size && c > (n_ - pos_) / min_size)
      fail(fmt::format("{}: count {} exceeds the {} bytes left", what, c, n_ - pos_));
    return c;
  }
  std::string str(const char* what = "string") {
    uint32_t c = count(1, what);
    const uint8_t* b = raw(c, what);
    return std::string(reinterpret_cast<const char*>(b), c);
  }
  std::vector<int64_t> dims(const char* what = "dims") {
    uint32_t c = count(8, what);
    if (c > 16) fail(fmt::format("{}: {} dimensions (max 16)", what, c));
    std::vector<int64_t> d(c);
    for (auto& x : d) x = i64(what);
    return d;
  }
  std::vector<int> ints(const char* what = "ints") {
    uint32_t c = count(4, what);
    std::vector<int> d(c);
    for (auto& x : d) x = i32(what);
    return d;
  }
  std::vector<float> floats(const char* what = "floats") {
    uint32_t c = count(4, what);
    std::vector<float> d(c);
    for (auto& x : d) x = f32(what);
    return d;
  }
  template <class E>
  E enumeration(int limit, const char* what) {
    uint8_t v = u8(what);
    if (v >= limit) fail(fmt::format("{}: value {} out of range [0, {})", what, v, limit));
    return static_cast<E>(v);
  }
  size_t pos() const { return pos_; }
  size_t left() const { return n_ - pos_; }
  void seek(size_t p) { if (p > n_) fail("seek out of range"); pos_ = p; }
  const std::string& where() const { return where_; }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  std::string where_;
};

}  // namespace tandem::engine_io
