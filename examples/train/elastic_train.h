// silk-train --elastic: the same training, launched without MPI by an elastic
// launcher, riding out lost ranks and admitting restarted ones.
#pragma once

#include "examples/train/flags.h"

namespace silk::examples {

// Runs the whole job on this member; returns the process's exit status.
int RunElasticTraining(const Flags& flags);

}  // namespace silk::examples
