// The bytes of one Weights: owned, or a read-only view into memory that a shared owner keeps
// alive (a loaded engine's mapped file), so that loading an engine copies no weights.
// Reading never copies; any mutation turns a view into owned bytes first (copy on write), so
// code that edits weights (the builder's passes, tests) works on either.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace tandem {

// Bytes that a shared source makes the first time anyone reads them, once, thread-safe: a loaded
// engine's INT8-encoded weights, dequantized when a context first reads them rather than at load.
class DeferredBytes {
 public:
  virtual ~DeferredBytes() = default;
  virtual const uint8_t* data() const = 0;
};

class WeightBytes {
 public:
  WeightBytes() = default;
  WeightBytes(std::vector<uint8_t> owned) : owned_(std::move(owned)) {}  // implicit: `w.bytes = vec`

  // n bytes at p, valid while keep_alive lives; never written through.
  static WeightBytes view(const uint8_t* p, size_t n, std::shared_ptr<const void> keep_alive) {
    WeightBytes b;
    b.view_ = p;
    b.view_size_ = n;
    b.keep_alive_ = std::move(keep_alive);
    return b;
  }
  // n bytes at offset of what source makes on first read (a view that keeps source alive).
  static WeightBytes deferred(std::shared_ptr<const DeferredBytes> source, size_t offset, size_t n) {
    WeightBytes b;
    b.deferred_ = source.get();
    b.view_offset_ = offset;
    b.view_size_ = n;
    b.keep_alive_ = std::move(source);
    return b;
  }
  bool is_view() const { return keep_alive_ != nullptr; }

  const uint8_t* data() const { return is_view() ? view_data() : owned_.data(); }
  uint8_t* data() { own(); return owned_.data(); }
  size_t size() const { return is_view() ? view_size_ : owned_.size(); }
  bool empty() const { return size() == 0; }
  const uint8_t* begin() const { return data(); }
  const uint8_t* end() const { return data() + size(); }

  void resize(size_t n) { own(); owned_.resize(n); }
  void assign(size_t n, uint8_t value) { drop_view(); owned_.assign(n, value); }
  template <class It>
  void assign(It first, It last) {  // the range may lie in this view: copy before letting it go
    std::vector<uint8_t> bytes(first, last);
    drop_view();
    owned_ = std::move(bytes);
  }
  std::vector<uint8_t> to_vector() const { return std::vector<uint8_t>(begin(), end()); }

  friend bool operator==(const WeightBytes& a, const WeightBytes& b) {
    return a.size() == b.size() && (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size()) == 0);
  }

 private:
  void own() {
    if (!is_view()) return;
    const uint8_t* p = view_data();
    owned_.assign(p, p + view_size_);
    drop_view();
  }
  const uint8_t* view_data() const { return deferred_ ? deferred_->data() + view_offset_ : view_; }
  void drop_view() {
    view_ = nullptr;
    deferred_ = nullptr;
    view_offset_ = view_size_ = 0;
    keep_alive_.reset();
  }

  std::vector<uint8_t> owned_;
  const uint8_t* view_ = nullptr;
  const DeferredBytes* deferred_ = nullptr;  // kept alive by keep_alive_
  size_t view_offset_ = 0, view_size_ = 0;
  std::shared_ptr<const void> keep_alive_;
};

}  // namespace tandem
