#include "tests/test.h"
void client_tests(void) {}
