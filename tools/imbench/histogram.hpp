// Log-linear latency histogram in the style of HdrHistogram: values (microseconds) below 256
// are exact, larger ones fall into 128 sub-buckets per power of two (relative error < 0.8%).
// Fixed memory (~36 KiB), O(1) record, mergeable. Not thread-safe: one per worker, merged at
// the end.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace imbench {

class Histogram {
 public:
  static constexpr int kSubBits = 7;                              // 128 sub-buckets per octave
  static constexpr std::uint64_t kLinear = 1u << (kSubBits + 1);  // 0..255 exact
  static constexpr int kOctaves = 40;                             // up to 2^47 us (~4.5 years)
  static constexpr std::size_t kBuckets = kLinear + kOctaves * (1u << kSubBits);

  void record(std::uint64_t v) {
    ++counts_[index(v)];
    ++count_;
    sum_ += v;
    max_ = std::max(max_, v);
    min_ = std::min(min_, v);
  }

  void merge(const Histogram& o) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    count_ += o.count_;
    sum_ += o.sum_;
    max_ = std::max(max_, o.max_);
    min_ = std::min(min_, o.min_);
  }

  void reset() { *this = Histogram{}; }

  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return count_ ? max_ : 0; }
  std::uint64_t min() const { return count_ ? min_ : 0; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }

  // The value at quantile q (0..1): the highest value of the bucket holding the q-th sample,
  // clamped to the recorded maximum (HdrHistogram's "highest equivalent value").
  std::uint64_t percentile(double q) const {
    if (!count_) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_) + 0.5);
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(upper(i), max_);
    }
    return max_;
  }

  static std::size_t index(std::uint64_t v) {
    if (v < kLinear) return static_cast<std::size_t>(v);
    int msb = 63 - std::countl_zero(v);  // >= kSubBits + 1
    int shift = msb - kSubBits;
    std::size_t octave = static_cast<std::size_t>(msb - (kSubBits + 1));
    if (octave >= static_cast<std::size_t>(kOctaves)) return kBuckets - 1;
    std::size_t sub = static_cast<std::size_t>((v >> shift) - (1u << kSubBits));
    return kLinear + octave * (1u << kSubBits) + sub;
  }

  // Highest value that maps to bucket i.
  static std::uint64_t upper(std::size_t i) {
    if (i < kLinear) return i;
    std::size_t j = i - kLinear;
    int octave = static_cast<int>(j >> kSubBits);
    std::uint64_t sub = j & ((1u << kSubBits) - 1);
    int shift = octave + 1;
    return (((1u << kSubBits) + sub + 1) << shift) - 1;
  }

 private:
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = ~std::uint64_t{0};
};

}  // namespace imbench
