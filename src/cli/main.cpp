// sluice: the command-line entry point. Each subcommand lives in its own file.
#include <cstdio>

int main() {
  std::puts("sluice");
  return 0;
}
