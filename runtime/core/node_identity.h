// Which machine and network namespace this process runs in. Two ranks can
// share memory and reach each other over loopback only when both are equal;
// a host name alone says neither (network namespaces of one machine, and
// containers or cloud images, repeat host names).
#pragma once

#include <string>

namespace silk {

// "<host name>/<machine id>/<boot id>/netns:<device>:<inode>"; the parts that
// cannot be read are left empty (never an error: identity only ever narrows
// "same node").
std::string NodeIdentity();

}  // namespace silk
