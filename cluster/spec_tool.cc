// silk-spec: loads and validates a cluster spec and prints it as JSON, so that
// scripts (cluster/vcluster) can read specs without protobuf bindings.
//
//   silk-spec cluster/specs/xinjiang-chongqing.textproto
//
// Exit status 0 with JSON on stdout, or 1 with the validation error on stderr.
#include <cstdio>
#include <string>

#include "runtime/core/cluster_spec.h"
#include "google/protobuf/util/json_util.h"

int main(int argc, char** argv) {
  if (argc != 2 || std::string(argv[1]) == "--help") {
    std::fprintf(stderr, "usage: %s SPEC.textproto\nPrints the validated cluster spec as JSON.\n", argv[0]);
    return 2;
  }
  auto spec = silk::cluster::LoadSpec(argv[1]);
  if (!spec.ok()) {
    std::fprintf(stderr, "silk-spec: %s\n", std::string(spec.status().message()).c_str());
    return 1;
  }
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;  // scripts can rely on every field being there
  options.preserve_proto_field_names = true;
  std::string json;
  auto printed = google::protobuf::util::MessageToJsonString(*spec, &json, options);
  if (!printed.ok()) {
    std::fprintf(stderr, "silk-spec: cannot print %s as JSON: %s\n", argv[1], printed.ToString().c_str());
    return 1;
  }
  std::fputs(json.c_str(), stdout);
  std::fputs("\n", stdout);
  return 0;
}
