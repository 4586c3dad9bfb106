# The contracts of the Inbox, Routes, PresenceStore, MemberCache, UserCache and CursorCache ports over every
# adapter (SQLite / memory / Redis / Redis Cluster). imd_redis_gtest (src/redis/CMakeLists.txt)
# discovers the cases in groups, each with its Redis fixture and environment.
imd_redis_gtest(redis_contract_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/redis_contract_test.cpp
  LIBS imd_store imd_routes imd_cache)
