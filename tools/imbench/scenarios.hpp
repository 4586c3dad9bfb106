// The imbench scenarios. Each reads its options from ctx.opts, prints a human-readable
// summary to stdout and emits one JSON line per result through ctx.reporter. Failures to
// set up (server refusing, timeouts) throw Failure.
#pragma once

#include "context.hpp"

namespace imbench {

void run_pairs(Context& ctx);
void run_group(Context& ctx);
void run_idle(Context& ctx);
void run_catchup(Context& ctx);
void run_history(Context& ctx);
void run_soak(Context& ctx);
void run_presence(Context& ctx);

}  // namespace imbench
