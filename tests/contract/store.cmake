# The Store port's contract over every adapter (store_contract_test.cpp). The SQLite cases need
# no server; the MySQL ones require the fixture `mariadb` (src/store_mysql/CMakeLists.txt) and
# get its settings through the environment.
include(GoogleTest)
add_executable(store_contract_test ${CMAKE_CURRENT_LIST_DIR}/store_contract_test.cpp)
target_link_libraries(store_contract_test PRIVATE
  imd_store imd_store_mysql GTest::gtest GTest::gtest_main)
gtest_discover_tests(store_contract_test
  TEST_FILTER "Sqlite/*" TEST_LIST imd_contract_sqlite_tests NO_PRETTY_VALUES
  DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300)
gtest_discover_tests(store_contract_test
  TEST_FILTER "Mysql/*" TEST_LIST imd_contract_mysql_tests NO_PRETTY_VALUES
  DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300 FIXTURES_REQUIRED mariadb)

# The Search port's contract (search_contract_test.cpp) on the adapters that index a store.
add_executable(search_contract_test ${CMAKE_CURRENT_LIST_DIR}/search_contract_test.cpp)
target_link_libraries(search_contract_test PRIVATE
  imd_store imd_store_mysql GTest::gtest GTest::gtest_main)
gtest_discover_tests(search_contract_test
  TEST_FILTER "Sqlite/*" NO_PRETTY_VALUES DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300)
gtest_discover_tests(search_contract_test
  TEST_FILTER "Mysql/*" TEST_LIST imd_search_mysql_tests NO_PRETTY_VALUES
  DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300 FIXTURES_REQUIRED mariadb)

# gtest_discover_tests splits list-valued PROPERTIES (ENVIRONMENT has several entries), so the
# environment is set by a CTest include file that runs after the discovered tests are added.
file(GENERATE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/store_contract_env.cmake CONTENT
"if(imd_contract_mysql_tests)
  set_tests_properties(\${imd_contract_mysql_tests} PROPERTIES
    ENVIRONMENT \"${IMD_TEST_MYSQL_ENV_IN_USE}\")
endif()
if(imd_search_mysql_tests)
  set_tests_properties(\${imd_search_mysql_tests} PROPERTIES
    ENVIRONMENT \"${IMD_TEST_MYSQL_ENV_IN_USE}\")
endif()
")
set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES
  ${CMAKE_CURRENT_BINARY_DIR}/store_contract_env.cmake)

