// rankq/version.hpp — library version.
#pragma once

#define RANKQ_VERSION_MAJOR 0
#define RANKQ_VERSION_MINOR 1
#define RANKQ_VERSION_PATCH 0

namespace rankq {
inline constexpr const char* kVersion = "0.1.0";
}
