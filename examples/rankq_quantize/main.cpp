// rankq-quantize — placeholder main until the synthetic table lands (replaced in the next commits).
#include <rankq/rankq.hpp>
#include <cstdio>
int main() { std::printf("rankq %s\n", rankq::kVersion); return 0; }
