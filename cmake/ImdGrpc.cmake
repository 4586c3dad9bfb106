# gRPC and protobuf from Debian (libgrpc++-dev 1.51, libprotobuf-dev 3.21, protobuf-compiler,
# protobuf-compiler-grpc), found through pkg-config, and one helper to compile .proto files.
#
# imd_grpc_library(<target> PROTO_ROOT <dir> PROTOS <file>...)
#   Generates C++ messages and gRPC stubs for PROTOS (paths relative to PROTO_ROOT, which is
#   also the import root) into the build tree and builds them as a static library <target>.
#   Include the generated headers by their path below PROTO_ROOT with .pb.h / .grpc.pb.h
#   (e.g. "rpc/push.grpc.pb.h" for PROTO_ROOT/rpc/push.proto). Warnings are off for the
#   generated code.
include_guard(GLOBAL)

pkg_check_modules(GRPCPP REQUIRED IMPORTED_TARGET GLOBAL grpc++)
pkg_check_modules(PROTOBUF REQUIRED IMPORTED_TARGET GLOBAL protobuf)
find_program(IMD_PROTOC protoc REQUIRED)
find_program(IMD_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)

function(imd_grpc_library target)
  cmake_parse_arguments(G "" "PROTO_ROOT" "PROTOS" ${ARGN})
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/${target}_gen)
  file(MAKE_DIRECTORY ${out_dir})
  set(sources)
  set(depends)
  foreach(proto ${G_PROTOS})
    string(REGEX REPLACE "\\.proto$" "" stem ${proto})
    set(gen ${out_dir}/${stem}.pb.cc ${out_dir}/${stem}.pb.h ${out_dir}/${stem}.grpc.pb.cc
            ${out_dir}/${stem}.grpc.pb.h)
    add_custom_command(
      OUTPUT ${gen}
      COMMAND ${IMD_PROTOC} --proto_path=${G_PROTO_ROOT} --cpp_out=${out_dir}
              --grpc_out=${out_dir} --plugin=protoc-gen-grpc=${IMD_GRPC_CPP_PLUGIN}
              ${G_PROTO_ROOT}/${proto}
      DEPENDS ${G_PROTO_ROOT}/${proto}
      COMMENT "protoc ${proto}"
      VERBATIM)
    list(APPEND sources ${out_dir}/${stem}.pb.cc ${out_dir}/${stem}.grpc.pb.cc)
  endforeach()
  add_library(${target} STATIC ${sources})
  target_include_directories(${target} SYSTEM PUBLIC ${out_dir})
  target_compile_options(${target} PRIVATE -w)
  target_link_libraries(${target} PUBLIC PkgConfig::GRPCPP PkgConfig::PROTOBUF)
endfunction()
