// Rendezvous (highest random weight) hashing of partitions onto nodes: partition p goes to the
// participant with the highest weight(node, p). Every node computes the same answer from the
// same participant set, and when a node joins or leaves only the partitions it wins or held
// move. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <vector>

namespace imd {

// A 64-bit weight; distinct for distinct (node, partition) pairs, so there are no ties.
std::uint64_t rendezvous_weight(std::uint32_t node, std::uint32_t partition);

// The winner of `partition` among `participants` (not empty; duplicates are harmless).
std::uint32_t rendezvous_owner(std::uint32_t partition,
                               const std::vector<std::uint32_t>& participants);

// The partitions of [0, count) that `self` wins among `participants` (`self` counts as a
// participant even when missing from the list), ascending.
std::vector<std::uint32_t> rendezvous_share(std::uint32_t self, std::uint32_t count,
                                            const std::vector<std::uint32_t>& participants);

}  // namespace imd
