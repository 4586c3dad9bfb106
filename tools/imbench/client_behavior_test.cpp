#include "client_behavior.hpp"

#include <gtest/gtest.h>

namespace imbench {

TEST(ConvOrder, InOrderGapsAndDuplicates) {
  ConvState c;
  EXPECT_EQ(ClientState::note(c, 1), 0);
  EXPECT_EQ(ClientState::note(c, 2), 0);
  EXPECT_EQ(ClientState::note(c, 4), 1);  // 3 missing: out of order
  EXPECT_EQ(c.last_seq, 2u);
  EXPECT_EQ(ClientState::note(c, 3), 0);  // fills the gap, 4 is absorbed
  EXPECT_EQ(c.last_seq, 4u);
  EXPECT_EQ(ClientState::note(c, 4), -1);  // seen
  EXPECT_EQ(ClientState::note(c, 2), -1);
  EXPECT_TRUE(c.ahead.empty());
}

TEST(ConvOrder, OwnSendsCountInTheSequence) {
  // A DM's seqs count both directions: seq 2 was our own message (its `sent`).
  ConvState c;
  EXPECT_EQ(ClientState::note(c, 1), 0);
  ClientState::note(c, 2);                // our `sent`
  EXPECT_EQ(ClientState::note(c, 3), 0);  // the peer's next `msg` is in order
}

}  // namespace imbench
