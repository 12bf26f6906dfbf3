// SPDX-License-Identifier: GPL-2.0-only
#include "suites.h"

int run_flow_tests(void)
{
	return 0;
}
